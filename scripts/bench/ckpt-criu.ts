/**
 * The crs criu part of scripts/bench/checkpoint.ts: R ranks x M MiB of an unmodified C program
 * (test/fixtures/criu-counter.c), dumped and restored through ompx and by plain criu, in the same
 * run, alternating which goes first.
 *
 * - ompx dump: `ompx checkpoint --term --json <pid>` of `ompx run --mca crs criu -np R` (central
 *   store), wall time of the tool; the images are checksummed and fsync'ed before it returns.
 * - plain dump: R `criu dump -t ROOT -D DIR` at once, of the same program started the way a CRIU
 *   user would (`unshare --pid --fork --kill-child setsid prog > file`), wall until all exit; and
 *   the same plus a `sync` (the durability ompx gives).
 * - ompx restore: `ompx restart <ref>`, spawn until every rank printed its first line after the
 *   restore (the program prints every 5 ms, so this counts up to 5 ms the plain one does not);
 *   once as by default (every checksum verified first) and once with sstore_base_verify=size
 *   (plain criu verifies nothing).
 * - plain restore: R `criu restore -d -D DIR` at once, wall until all exit (criu -d returns
 *   once the tree runs); ckpt-criu-plain.ts.
 * - with `--base BIN`, the ompx side runs once more with BIN in every rep (rep.base), so a
 *   change is judged against the baseline build under the same load.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { plainRound, type PlainTimes } from './ckpt-criu-plain'
import { tagRun } from './lib'
import { lineWatcher, runFor, sync, within } from './proc'

export interface CriuBenchOptions {
  bin: string
  /** A second ompx (the baseline build), measured the same way in the same reps. */
  base?: string
  ranks: number
  mb: number
  reps: number
  /** A fresh directory of the run, removed by the caller. */
  work: string
  timeoutMs: number
  log: (s: string) => void
}

/** What one ompx binary measured in a rep. */
export interface OmpxTimes {
  /** Wall of `ompx checkpoint --term`, and the HNP's own phases of it. */
  ompxDumpMs?: number
  phases?: Record<string, number>
  bytes?: number
  /** The slowest rank's `criu dump` inside ompx (its captureMs in global.json). */
  criuMs?: number
  /** `ompx restart`, checksums verified first (the default), and sizes only (sstore_base_verify=size). */
  ompxRestoreMs?: number
  ompxRestoreSizeMs?: number
}

export interface CriuRep extends OmpxTimes, PlainTimes {
  ok: boolean
  err?: string
  /** The same as the top-level ompx fields, of --base. */
  base?: OmpxTimes
}

export interface CriuBench {
  /** Why the part could not run here (not root, no criu, no cc), or null. */
  skipped: string | null
  criu: string | null
  reps: CriuRep[]
}

const REPO = resolve(import.meta.dir, '../..')
const tickOf = (line: string) => /^\[[^,\]]+,(\d+)\]<stdout>:tick /.exec(line)

/** Wait until every rank 0..R-1 printed a tick line (with --tag-output) at or after index `from`. */
function allTicked(ranks: number, from: number) {
  return (lines: string[]) => {
    const seen = new Set<number>()
    for (let i = from; i < lines.length; i++) {
      const m = tickOf(lines[i]!)
      if (m) seen.add(Number(m[1]))
    }
    return seen.size >= ranks
  }
}

/** The largest captureMs of the newest seq of a global snapshot. */
function slowestCapture(snapDir: string): number | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(snapDir, 'global.json'), 'utf8')) as { seqs: { ranks: { captureMs?: number }[] }[] }
    const ms = meta.seqs.at(-1)!.ranks.map((r) => r.captureMs ?? 0)
    return Math.max(...ms)
  } catch {
    return undefined
  }
}

export async function criuBench(o: CriuBenchOptions): Promise<CriuBench> {
  if (process.getuid?.() !== 0) return { skipped: 'not root: criu needs root', criu: null, reps: [] }
  const inst = await runFor(['bash', join(REPO, 'scripts/install-criu.sh')], 900_000)
  const criu = inst.out.trim()
  if (inst.code !== 0 || !criu) return { skipped: `scripts/install-criu.sh failed: ${inst.err.trim().split('\n').pop()}`, criu: null, reps: [] }
  const counter = join(o.work, 'criu-counter')
  const cc = await runFor(['cc', '-O2', '-o', counter, join(REPO, 'test/fixtures/criu-counter.c')], 60_000)
  if (cc.code !== 0) return { skipped: `cc failed: ${cc.err.trim()}`, criu, reps: [] }
  const prog = [counter, '--mib', String(o.mb), '--interval-ms', '5']
  const env = { OMPX_CRIU: criu, TMPDIR: join(o.work, 't') }
  mkdirSync(env.TMPDIR, { recursive: true })
  let seq = 0

  async function ompxRound(rep: CriuRep, bin: string, into: OmpxTimes): Promise<void> {
    const dir = join(o.work, `criu-ompx-${++seq}`)
    const snap = join(dir, 'snap')
    mkdirSync(snap, { recursive: true })
    const tag = tagRun()
    const e = { ...env, ...tag.env }
    const store = ['--mca', 'sstore_base_global_snapshot_dir', snap]
    try {
      const job = Bun.spawn([bin, 'run', '--oversubscribe', '--mca', 'crs', 'criu', ...store, '--tag-output', '-np', String(o.ranks), '--', ...prog], {
        env: { ...process.env, ...e }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe',
      })
      const jobErr = new Response(job.stderr).text()
      const out = lineWatcher(job.stdout)
      if (!(await out.until(allTicked(o.ranks, 0), o.timeoutMs))) {
        job.kill('SIGKILL')
        throw new Error(`ompx run: ranks not running: ${((await within(jobErr, 1000)) as string).toString().trim()}`)
      }
      await sync()
      const ck = await runFor([bin, 'checkpoint', '--term', '--json', '--timing', String(job.pid)], o.timeoutMs, e)
      if (ck.code !== 0) throw new Error(`ompx checkpoint --term: exit ${ck.code}: ${ck.err.trim()}`)
      const doc = JSON.parse(ck.out) as { ref: string; bytes: number; timing: Record<string, number> }
      Object.assign(into, { ompxDumpMs: ck.ms, phases: doc.timing, bytes: doc.bytes, criuMs: slowestCapture(join(snap, doc.ref)) })
      if ((await within(job.exited, o.timeoutMs)) === 'timeout' || job.exitCode !== 0) throw new Error(`ompx run did not end with 0 after --term (${job.exitCode})`)

      // Both verification modes, alternating which goes first (the second finds the images
      // warmer in the page cache only if the first evicted nothing: all fit in RAM here).
      const modes = seq % 2 ? (['checksum', 'size'] as const) : (['size', 'checksum'] as const)
      for (const mode of modes) {
        const ms = await restartOnce(bin, doc.ref, store, e, mode)
        if (mode === 'checksum') into.ompxRestoreMs = ms
        else into.ompxRestoreSizeMs = ms
      }
    } finally {
      rep.leftovers = [...(rep.leftovers ?? []), ...(await tag.done())]
      rmSync(dir, { recursive: true, force: true })
    }
  }

  /** `ompx restart` of `ref`; spawn until every rank printed a line after its restore. Then ended. */
  async function restartOnce(bin: string, ref: string, store: string[], e: Record<string, string>, verify: 'checksum' | 'size'): Promise<number> {
    await sync()
    const t0 = performance.now()
    const rs = Bun.spawn([bin, 'restart', '--tag-output', ...store, '--mca', 'sstore_base_verify', verify, ref], {
      env: { ...process.env, ...e }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe',
    })
    const rsErr = new Response(rs.stderr).text()
    const up = await lineWatcher(rs.stdout).until(allTicked(o.ranks, 0), o.timeoutMs)
    const ms = performance.now() - t0
    rs.kill('SIGTERM')
    await within(rs.exited, 30_000)
    if (!up) throw new Error(`ompx restart: ranks not running: ${((await within(rsErr, 1000)) as string).toString().trim()}`)
    return ms
  }

  const reps: CriuRep[] = []
  for (let r = -1; r < o.reps; r++) {
    const rep: CriuRep = { ok: false }
    // Alternate which goes first; rep -1 warms the page cache (binary, program) and is dropped.
    const rounds: (() => Promise<void>)[] = [
      () => ompxRound(rep, o.bin, rep),
      ...(o.base ? [() => ompxRound(rep, o.base!, (rep.base = {}))] : []),
      () => plainRound({ criu, ranks: o.ranks, prog, dir: join(o.work, `criu-plain-${++seq}`), timeoutMs: o.timeoutMs }, rep),
    ]
    if (r % 2) rounds.reverse()
    try {
      for (const round of rounds) await round()
      rep.ok = true
    } catch (err) {
      rep.err = (err as Error).message
    }
    const f = (ms?: number) => (ms === undefined ? '?' : `${Math.round(ms)} ms`)
    o.log(`criu ${r < 0 ? 'warm-up' : `rep ${r + 1}`}: ${rep.ok ? '' : `FAILED: ${rep.err}; `}ompx dump ${f(rep.ompxDumpMs)}, restore ${f(rep.ompxRestoreMs)} (size-only ${f(rep.ompxRestoreSizeMs)}); plain dump ${f(rep.plainDumpMs)} (+sync ${f(rep.plainDumpSyncMs)}), restore ${f(rep.plainRestoreMs)}${rep.base ? `; base dump ${f(rep.base.ompxDumpMs)}, restore ${f(rep.base.ompxRestoreMs)} (size-only ${f(rep.base.ompxRestoreSizeMs)})` : ''}`)
    if (r >= 0) reps.push(rep)
  }
  return { skipped: null, criu, reps }
}
