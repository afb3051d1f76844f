/**
 * One global snapshot (`<global dir>/<ref>/`), owned by the HNP. global.json is the only thing
 * that makes a seq exist: a checkpoint writes its rank dirs under a reserved seq number, and only
 * `commit` (temp file, fsync, rename, fsync dir) publishes it. A crash at any point leaves the
 * previous global.json, so older snapshots are never touched by a failing newer one; the dirs of
 * interrupted seqs are removed by the next successful commit.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { readdir, rename, rm } from '../util/fs-promises'
import { basename, dirname, join, resolve } from 'node:path'
import { ActionableError } from '../errors'
import { algoOf, type VerifyMode } from './checksum'
import { PRIVATE_DIR_MODE, fsyncDir, toJson, writeFileAtomic } from './durable'
import { readGlobalMeta } from './global-meta'
import { isSnapshotRef, resolveSnapshot } from './refs'
import { writeRankMeta } from './local-snapshot'
import { checkRankTree, checkRealDir, readKvFile, writeKvFile } from './seq-dir'
import { GLOBAL_META, META_VERSION, RANK_META, type GlobalMeta, type SeqMeta } from './types'
import { verifyFiles, type VerifyTarget } from './verify'

/** What the job contributes to global.json on each commit (the latest job's values win). */
export type GlobalBase = Pick<GlobalMeta, 'jobid' | 'apps' | 'nodes' | 'params'>

const SEQ_DIR = /^\d+$/

export class GlobalSnapshot {
  /** Serialises commits: each rewrites global.json from `meta`. */
  private lock: Promise<unknown> = Promise.resolve()

  private constructor(
    readonly globalDir: string,
    readonly ref: string,
    private meta: GlobalMeta | null,
    private readonly createdAt: number,
  ) {}

  /** Start a new global snapshot: makes the dir (0700); nothing is listed until the first commit. */
  static create(globalDir: string, ref: string): GlobalSnapshot {
    if (!isSnapshotRef(ref)) throw new Error(`"${ref}" is not a snapshot ref (ompx_global_snapshot_<jobid>.ckpt)`)
    const dir = join(globalDir, ref)
    if (existsSync(join(dir, GLOBAL_META))) {
      throw new ActionableError(`snapshot ${ref} already exists in ${globalDir}; remove it or set sstore_base_global_snapshot_dir to another directory`)
    }
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
    return new GlobalSnapshot(globalDir, ref, null, Date.now())
  }

  /** Open a committed snapshot by its .ckpt directory; damaged global.json -> ActionableError naming it. */
  static open(dir: string): GlobalSnapshot {
    const snap = GlobalSnapshot.tryOpenDir(dir)
    if (!snap) throw new ActionableError(`${join(dir, GLOBAL_META)} does not exist: no checkpoint of this job ever finished`)
    return snap
  }

  /** `ref` in `globalDir` if it has a committed global.json, else undefined (damaged -> ActionableError). */
  static tryOpen(globalDir: string, ref: string): GlobalSnapshot | undefined {
    return GlobalSnapshot.tryOpenDir(join(globalDir, ref))
  }

  /** Open what the user named (bare ref, .ckpt dir, or global.json path). */
  static resolve(refOrPath: string, globalDir: string): GlobalSnapshot {
    return GlobalSnapshot.open(resolveSnapshot(refOrPath, globalDir).dir)
  }

  /** The existing snapshot of `ref` (further checkpoints of the same job), else a new one. */
  static openOrCreate(globalDir: string, ref: string): GlobalSnapshot {
    return GlobalSnapshot.tryOpen(globalDir, ref) ?? GlobalSnapshot.create(globalDir, ref)
  }

  private static tryOpenDir(dir: string): GlobalSnapshot | undefined {
    const abs = resolve(dir)
    const meta = readGlobalMeta(join(abs, GLOBAL_META))
    return meta ? new GlobalSnapshot(dirname(abs), basename(abs), meta, meta.created) : undefined
  }

  get dir(): string {
    return join(this.globalDir, this.ref)
  }

  /** The committed metadata; null before the first commit. */
  get committed(): GlobalMeta | null {
    return this.meta
  }

  seqDir(seq: number): string {
    return join(this.dir, String(seq))
  }

  rankDir(seq: number, rank: number): string {
    return join(this.seqDir(seq), `rank_${rank}`)
  }

  /**
   * Reserve the next seq number by creating its dir: one above every listed seq and every seq dir
   * on disk, so an interrupted checkpoint's number (and its leftovers) is never reused.
   */
  nextSeq(): number {
    let n = 0
    for (const s of this.meta?.seqs ?? []) n = Math.max(n, s.seq + 1)
    for (const name of readdirSync(this.dir)) if (SEQ_DIR.test(name)) n = Math.max(n, Number(name) + 1)
    for (;;) {
      try {
        mkdirSync(this.seqDir(n), { mode: PRIVATE_DIR_MODE })
        return n
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        n++
      }
    }
  }

  /** Finished seqs, oldest first. */
  list(): SeqMeta[] {
    return [...(this.meta?.seqs ?? [])]
  }

  /** The newest finished seq, undefined before the first commit. */
  latest(): SeqMeta | undefined {
    return this.meta?.seqs.at(-1)
  }

  get(seq: number): SeqMeta {
    const s = this.meta?.seqs.find((x) => x.seq === seq)
    if (!s) {
      const have = this.meta?.seqs.map((x) => x.seq).join(', ') || 'none'
      throw new ActionableError(`snapshot ${this.ref} has no seq ${seq} (finished seqs: ${have})`)
    }
    return s
  }

  /**
   * Publish a finished checkpoint: rank dirs are already on disk and fsynced; add a missing
   * ompx-rank.json, write the kv store (`seq.kv`) to `<seq>/kv.json`, make the entries durable,
   * then swap in the new global.json (listing kv.json, not holding the kv) atomically. With `keep`
   * > 0 (retention) that same write lists only the newest `keep` seqs, so no listing ever shows
   * more. Afterwards remove the dirs of unlisted seqs older than this one (dropped by retention,
   * or interrupted).
   */
  commit(seq: SeqMeta, base: GlobalBase, keep = 0): Promise<GlobalMeta> {
    return this.locked(async () => {
      if (this.meta?.seqs.some((s) => s.seq === seq.seq)) throw new Error(`seq ${seq.seq} of ${this.ref} is already committed`)
      if (!existsSync(this.seqDir(seq.seq))) throw new Error(`cannot commit seq ${seq.seq} of ${this.ref}: ${this.seqDir(seq.seq)} does not exist`)
      // Rank dirs received from a stage store have no ompx-rank.json yet: every rank dir of a
      // committed seq describes itself, whichever store wrote it.
      for (const r of seq.ranks) {
        const dir = this.rankDir(seq.seq, r.rank)
        if (!existsSync(join(dir, RANK_META))) await writeRankMeta(dir, r)
      }
      const { kv, ...stored } = seq
      if (kv) {
        const first = seq.ranks.find((r) => r.files.length > 0)?.files[0]
        stored.kvFile = await writeKvFile(this.seqDir(seq.seq), kv, first ? algoOf(first.sum) : 'crc32')
      }
      await fsyncDir(this.seqDir(seq.seq))
      await fsyncDir(this.dir)
      const next: GlobalMeta = {
        version: META_VERSION,
        ref: this.ref,
        jobid: base.jobid,
        created: this.meta?.created ?? this.createdAt,
        apps: base.apps,
        nodes: base.nodes,
        params: base.params,
        seqs: [...(this.meta?.seqs ?? []), stored].sort((a, b) => a.seq - b.seq).slice(keep > 0 ? -keep : 0),
      }
      await this.write(next)
      await this.removeUnlisted(seq.seq)
      return next
    })
  }

  /**
   * Check a seq (default: the latest) before a restart uses it: its seq dir and rank dirs are
   * real directories holding only what global.json lists, then every file's size and checksum
   * (kv.json included). The seq returned carries its kv store again (`kv`), read from kv.json.
   */
  async verify(seq?: number, mode: VerifyMode = 'checksum'): Promise<SeqMeta> {
    const { seq: s, verified } = await this.verifyAhead(seq, mode)
    await verified
    return s
  }

  /**
   * `verify` in two parts, for a restart that starts its ranks while their checksums are read:
   * resolves once the layout, every size and kv.json (checksum included) are checked, with
   * `verified`, the rank files' checksums, still under way (undefined in mode `size`: nothing
   * is left). Nothing may run from the images before it resolved (RankRestore.verified).
   */
  async verifyAhead(seq?: number, mode: VerifyMode = 'checksum'): Promise<{ seq: SeqMeta; verified?: Promise<void> }> {
    const s = seq === undefined ? this.latest() : this.get(seq)
    if (!s) throw new ActionableError(`snapshot ${this.ref} has no finished seq to verify`)
    const what = `snapshot ${this.ref} seq ${s.seq}`
    const seqDir = this.seqDir(s.seq)
    await checkRealDir(what, seqDir, `seq dir ${s.seq}`)
    const targets: VerifyTarget[] = []
    for (const r of s.ranks) {
      const label = `rank_${r.rank}`
      await checkRankTree(what, this.rankDir(s.seq, r.rank), label, r.files)
      targets.push({ dir: this.rankDir(s.seq, r.rank), label, files: r.files })
    }
    await verifyFiles(what, targets, 'size')
    if (s.kvFile) {
      await verifyFiles(what, [{ dir: seqDir, label: '', files: [s.kvFile] }], mode)
      // Kept in memory only: write() never puts it back into global.json.
      s.kv = await readKvFile(seqDir, what)
    }
    if (mode === 'size') return { seq: s }
    const verified = verifyFiles(what, targets, mode)
    verified.catch(() => {}) // handled by whoever awaits it; never an unhandled rejection meanwhile
    return { seq: s, verified }
  }

  /** Delete the whole global snapshot. Renamed away first, so it vanishes from listings at once. */
  async remove(): Promise<void> {
    const trash = join(this.globalDir, `.${this.ref}.removing.${process.pid}.${Date.now()}`)
    await rename(this.dir, trash)
    await fsyncDir(this.globalDir)
    this.meta = null
    await rm(trash, { recursive: true, force: true })
  }

  /** Remove seq dirs not listed in global.json with numbers below `below`, and stale temp files. */
  private async removeUnlisted(below: number): Promise<void> {
    const listed = new Set(this.meta?.seqs.map((s) => s.seq))
    for (const name of await readdir(this.dir)) {
      const stale = SEQ_DIR.test(name) ? Number(name) < below && !listed.has(Number(name)) : name.startsWith(`${GLOBAL_META}.tmp`)
      if (stale) await rm(join(this.dir, name), { recursive: true, force: true })
    }
  }

  /** Commit `meta`; a seq's kv goes to disk only inline in old snapshots (without kv.json). */
  private async write(meta: GlobalMeta): Promise<void> {
    const seqs = meta.seqs.map(({ kv, ...s }) => (s.kvFile || kv === undefined ? s : { ...s, kv }))
    await writeFileAtomic(join(this.dir, GLOBAL_META), toJson({ ...meta, seqs }))
    this.meta = meta
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn)
    this.lock = run.catch(() => {})
    return run
  }
}
