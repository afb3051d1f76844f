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
 *   once the tree runs).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tagRun } from './lib'
import { childrenOf, lineWatcher, runFor, sync, within } from './proc'

export interface CriuBenchOptions {
  bin: string
  ranks: number
  mb: number
  reps: number
  /** A fresh directory of the run, removed by the caller. */
  work: string
  timeoutMs: number
  log: (s: string) => void
}

export interface CriuRep {
  ok: boolean
  err?: string
  /** Wall of `ompx checkpoint --term`, and the HNP's own phases of it. */
  ompxDumpMs?: number
  phases?: Record<string, number>
  bytes?: number
  /** The slowest rank's `criu dump` inside ompx (its captureMs in global.json). */
  criuMs?: number
  /** `ompx restart`, checksums verified first (the default), and sizes only (sstore_base_verify=size). */
  ompxRestoreMs?: number
  ompxRestoreSizeMs?: number
  plainDumpMs?: number
  plainDumpSyncMs?: number
  plainRestoreMs?: number
  leftovers?: string[]
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

  async function ompxRound(rep: CriuRep): Promise<void> {
    const dir = join(o.work, `criu-ompx-${++seq}`)
    const snap = join(dir, 'snap')
    mkdirSync(snap, { recursive: true })
    const tag = tagRun()
    const e = { ...env, ...tag.env }
    const store = ['--mca', 'sstore_base_global_snapshot_dir', snap]
    try {
      const job = Bun.spawn([o.bin, 'run', '--oversubscribe', '--mca', 'crs', 'criu', ...store, '--tag-output', '-np', String(o.ranks), '--', ...prog], {
        env: { ...process.env, ...e }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe',
      })
      const jobErr = new Response(job.stderr).text()
      const out = lineWatcher(job.stdout)
      if (!(await out.until(allTicked(o.ranks, 0), o.timeoutMs))) {
        job.kill('SIGKILL')
        throw new Error(`ompx run: ranks not running: ${((await within(jobErr, 1000)) as string).toString().trim()}`)
      }
      await sync()
      const ck = await runFor([o.bin, 'checkpoint', '--term', '--json', '--timing', String(job.pid)], o.timeoutMs, e)
      if (ck.code !== 0) throw new Error(`ompx checkpoint --term: exit ${ck.code}: ${ck.err.trim()}`)
      const doc = JSON.parse(ck.out) as { ref: string; bytes: number; timing: Record<string, number> }
      Object.assign(rep, { ompxDumpMs: ck.ms, phases: doc.timing, bytes: doc.bytes, criuMs: slowestCapture(join(snap, doc.ref)) })
      if ((await within(job.exited, o.timeoutMs)) === 'timeout' || job.exitCode !== 0) throw new Error(`ompx run did not end with 0 after --term (${job.exitCode})`)

      // Both verification modes, alternating which goes first (the second finds the images
      // warmer in the page cache only if the first evicted nothing: all fit in RAM here).
      const modes = seq % 2 ? (['checksum', 'size'] as const) : (['size', 'checksum'] as const)
      for (const mode of modes) {
        const ms = await restartOnce(doc.ref, store, e, mode)
        if (mode === 'checksum') rep.ompxRestoreMs = ms
        else rep.ompxRestoreSizeMs = ms
      }
    } finally {
      rep.leftovers = [...(rep.leftovers ?? []), ...(await tag.done())]
      rmSync(dir, { recursive: true, force: true })
    }
  }

  /** `ompx restart` of `ref`; spawn until every rank printed a line after its restore. Then ended. */
  async function restartOnce(ref: string, store: string[], e: Record<string, string>, verify: 'checksum' | 'size'): Promise<number> {
    await sync()
    const t0 = performance.now()
    const rs = Bun.spawn([o.bin, 'restart', '--tag-output', ...store, '--mca', 'sstore_base_verify', verify, ref], {
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

  /** R criu commands at once (each with -D DIR -o LOG); wall until all exit. Throws naming the first that failed. */
  async function criuAll(argvs: string[][], e: Record<string, string>): Promise<number> {
    const t0 = performance.now()
    const res = await Promise.all(argvs.map((a) => runFor([criu, ...a], o.timeoutMs, e)))
    const ms = performance.now() - t0
    const bad = res.findIndex((r) => r.code !== 0)
    if (bad >= 0) {
      const a = argvs[bad]!
      const logFile = join(a[a.indexOf('-D') + 1]!, a[a.indexOf('-o') + 1]!)
      const why = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => /Error/.test(l)).slice(0, 2).join(' | ') : ''
      throw new Error(`criu ${a.join(' ')}: exit ${res[bad]!.code}: ${why || res[bad]!.err.trim().split('\n').pop()}`)
    }
    return ms
  }

  async function plainRound(rep: CriuRep): Promise<void> {
    const dir = join(o.work, `criu-plain-${++seq}`)
    mkdirSync(dir, { recursive: true })
    const tag = tagRun()
    const e = { ...tag.env }
    const dirs = Array.from({ length: o.ranks }, (_, i) => join(dir, `img${i}`))
    const outs = dirs.map((_, i) => join(dir, `out${i}`))
    try {
      const trees = outs.map((out, i) => {
        // Each tree its own cwd: criu's parasite mounts a procfs relative to it during a dump
        // (docs/criu.md), so trees sharing one cannot be dumped at the same time.
        const cwd = join(dir, `cwd${i}`)
        mkdirSync(cwd)
        const fd = openSync(out, 'w')
        // stderr to /dev/null: unshare complains there when its child is dumped, and any write
        // to the output file after the dump would fail criu's size check at restore.
        const p = Bun.spawn(['unshare', '--pid', '--fork', '--kill-child', 'setsid', ...prog], { cwd, env: { ...process.env, ...e }, stdin: 'ignore', stdout: fd, stderr: 'ignore' })
        closeSync(fd)
        return p
      })
      const deadline = performance.now() + o.timeoutMs
      while (!outs.every((f) => existsSync(f) && readFileSync(f, 'utf8').includes('tick '))) {
        if (performance.now() > deadline) throw new Error('plain: the programs did not start')
        await Bun.sleep(20)
      }
      const roots = trees.map((t) => childrenOf(t.pid)[0])
      if (roots.some((r) => r === undefined)) throw new Error('plain: no process under unshare')
      for (const d of dirs) mkdirSync(d)
      await sync()
      const t0 = performance.now()
      rep.plainDumpMs = await criuAll(roots.map((r, i) => ['dump', '-t', String(r), '-D', dirs[i]!, '-o', 'dump.log']), e)
      await sync()
      rep.plainDumpSyncMs = performance.now() - t0
      await Promise.all(trees.map((t) => t.exited))

      await sync()
      rep.plainRestoreMs = await criuAll(dirs.map((d) => ['restore', '-d', '-D', d, '-o', 'restore.log', '--pidfile', join(d, 'pid')]), e)
      for (const d of dirs) {
        try {
          process.kill(-Number(readFileSync(join(d, 'pid'), 'utf8')), 'SIGKILL')
        } catch {}
      }
    } finally {
      rep.leftovers = [...(rep.leftovers ?? []), ...(await tag.done(200))]
      rmSync(dir, { recursive: true, force: true })
    }
  }

  const reps: CriuRep[] = []
  for (let r = -1; r < o.reps; r++) {
    const rep: CriuRep = { ok: false }
    // Alternate which goes first; rep -1 warms the page cache (binary, program) and is dropped.
    const order = r % 2 === 0 ? [ompxRound, plainRound] : [plainRound, ompxRound]
    try {
      for (const round of order) await round(rep)
      rep.ok = true
    } catch (err) {
      rep.err = (err as Error).message
    }
    const f = (ms?: number) => (ms === undefined ? '?' : `${Math.round(ms)} ms`)
    o.log(`criu ${r < 0 ? 'warm-up' : `rep ${r + 1}`}: ${rep.ok ? '' : `FAILED: ${rep.err}; `}ompx dump ${f(rep.ompxDumpMs)}, restore ${f(rep.ompxRestoreMs)} (size-only ${f(rep.ompxRestoreSizeMs)}); plain dump ${f(rep.plainDumpMs)} (+sync ${f(rep.plainDumpSyncMs)}), restore ${f(rep.plainRestoreMs)}`)
    if (r >= 0) reps.push(rep)
  }
  return { skipped: null, criu, reps }
}
