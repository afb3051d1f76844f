/**
 * Shared pieces of the checkpoint/restart e2e tests (checkpoint-*.test.ts): the fixture apps and
 * their usual shapes, their reference checksums (an uninterrupted run, memoized for the whole
 * `bun test` process) and the check of a run against them, and small readers of the snapshot
 * directory and of running jobs. The per-file set-up and the steps that drive jobs
 * (start, checkpoint, --term, restart) are in checkpoint-jobs.ts.
 */
import { expect } from 'bun:test'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { cmdlineOf, currentMark, FIXTURES, findMarked, lines, ompx, type OmpxProcess, type RunOpts, type RunResult } from '../helpers'

/** The bun running the tests runs the TypeScript ranks too. */
export const BUN = process.execPath
export const CKPT_APP = join(FIXTURES, 'ckpt-app.ts')
export const CKPT_HOLD = join(FIXTURES, 'ckpt-hold.ts')
export const CKPT_LOOP = join(FIXTURES, 'ckpt-loop.sh')
export const CKPT_COUNTER_C = join(FIXTURES, 'ckpt-counter.c')

export const dirArgs = (dir: string) => ['--mca', 'sstore_base_global_snapshot_dir', dir]

export interface AppShape {
  iters: number
  /** ckpt-app: --mb; ckpt-hold: --kb */
  size: number
  sleepMs: number
}

/** The usual shapes: ckpt-app with 4 MiB, ckpt-hold with 256 KiB of state per rank. */
export const APP: AppShape = { iters: 200, size: 4, sleepMs: 20 }
export const HOLD: AppShape = { iters: 200, size: 256, sleepMs: 20 }

export const appArgv = (s: AppShape) => [BUN, CKPT_APP, '--iters', String(s.iters), '--mb', String(s.size), '--sleep-ms', String(s.sleepMs)]
export const holdArgv = (s: AppShape) => [BUN, CKPT_HOLD, '--iters', String(s.iters), '--kb', String(s.size), '--sleep-ms', String(s.sleepMs)]

/** rank -> checksum from the `rank R checksum <hex>` lines; fails on a rank that printed two. */
export function checksums(stdout: string): Record<number, string> {
  const out: Record<number, string> = {}
  for (const l of lines(stdout)) {
    const m = /^rank (\d+) checksum ([0-9a-f]{8})$/.exec(l)
    if (!m) continue
    expect(out[Number(m[1])]).toBeUndefined()
    out[Number(m[1])] = m[2]!
  }
  return out
}

const refs = new Map<string, Promise<Record<number, string>>>()

/**
 * Checksums of an uninterrupted run of `argv` (no checkpoint; --sleep-ms 0 since sleeping does
 * not change the result) on np ranks, computed once per process.
 */
export function reference(kind: 'app' | 'hold', shape: AppShape, np = 4, env: Record<string, string> = {}): Promise<Record<number, string>> {
  const argv = (kind === 'app' ? appArgv : holdArgv)({ ...shape, sleepMs: 0 })
  const key = JSON.stringify([argv, np])
  let p = refs.get(key)
  if (!p) {
    p = (async () => {
      // Never the user's ~/.ompx, even though this run takes no checkpoint.
      const snap = mkdtempSync(join(tmpdir(), 'ompx-ckpt-ref-'))
      let r: RunResult
      try {
        r = await ompx(['run', '--launcher', 'local', '-H', `n1:${np}`, '-np', String(np), '--mca', 'crs', 'self', ...dirArgs(snap), '--', ...argv], { timeoutMs: 60_000, env })
      } finally {
        rmSync(snap, { recursive: true, force: true })
      }
      if (r.code !== 0) throw new Error(`reference run failed (${r.code}): ${r.stderr}`)
      const sums = checksums(r.stdout)
      if (Object.keys(sums).length !== np) throw new Error(`reference run printed ${Object.keys(sums).length} checksums:\n${r.stdout}`)
      return sums
    })()
    // A failed (or killed) reference run is not remembered: the next test tries again.
    p.catch(() => refs.delete(key))
    refs.set(key, p)
  }
  return p
}

/**
 * `r` (a job, or a restart, or either to come) ended with 0 (quiet: and nothing on stderr) and
 * printed the checksums `want` (a reference run's); returns it.
 */
export async function expectRight(r: RunResult | Promise<RunResult>, want: Promise<Record<number, string>>, quiet = false): Promise<RunResult> {
  const res = await r
  if (quiet) expect(res.stderr).toBe('')
  expect(res.code).toBe(0)
  expect(checksums(res.stdout)).toEqual(await want)
  return res
}

/** The `Snapshot Ref.: <seq> <ref>` line of ompx checkpoint. */
export function snapshotRef(stdout: string): { seq: number; ref: string } {
  const m = /^Snapshot Ref\.: (\d+) (ompx_global_snapshot_\S+\.ckpt)$/m.exec(stdout)
  if (!m) throw new Error(`no "Snapshot Ref.:" line in:\n${stdout}`)
  return { seq: Number(m[1]), ref: m[2]! }
}

export interface GlobalJson {
  ref: string
  jobid: string
  apps: { index: number; np: number; argv: string[] }[]
  nodes: { name: string; slots: number }[]
  params: Record<string, string>
  seqs: { seq: number; crs: string; sstore: string; options: string[]; bytes: number; ranks: { rank: number; node: string; crs: string; files: { path: string; size: number; sum: string }[] }[] }[]
}

export function readGlobal(dir: string, ref: string): GlobalJson {
  return JSON.parse(readFileSync(join(dir, ref, 'global.json'), 'utf8')) as GlobalJson
}

/** Seqs listed in global.json. */
export const listedSeqs = (dir: string, ref: string) => readGlobal(dir, ref).seqs.map((s) => s.seq)

/** relative path -> sha256 of every file under `root` (to show a snapshot was not touched). */
export function treeHash(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex')
    }
  }
  if (existsSync(root)) walk(root)
  return out
}

/** Files (relative) of a directory tree. */
export const treeFiles = (root: string) => Object.keys(treeHash(root)).sort()

export interface PsProc {
  rank: number
  node: string
  pid: number
  state: string
}

/** The ranks of the (only) job of HNP `pid`, from `ompx ps --json`. */
export async function rankProcs(pid: number, opts: RunOpts = {}): Promise<PsProc[]> {
  const r = await ompx(['ps', '--json', String(pid)], opts)
  if (r.code !== 0) throw new Error(`ompx ps ${pid} failed: ${r.stderr}`)
  const doc = JSON.parse(r.stdout) as { jobs: { procs: PsProc[] }[] }
  expect(doc.jobs).toHaveLength(1)
  return doc.jobs[0]!.procs
}

/** The state letter of /proc/<pid>/stat (R, S, T, Z...), '' when gone. */
export function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] ?? ''
  } catch {
    return ''
  }
}

/** Pid of this test's `ompx orted` for `node`. */
export function daemonOf(node: string): number {
  const hits = findMarked(currentMark()).filter((pid) => / orted .*--node (\S+)/.exec(cmdlineOf(pid))?.[1] === node)
  expect(hits).toHaveLength(1)
  return hits[0]!
}

export function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {}
}

/** Wait until every one of np ranks printed `rank R iter I` with I >= n (fails if ompx exits first). */
export async function waitIters(p: OmpxProcess, np: number, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const out = p.stdout()
    if (Array.from({ length: np }, (_, r) => lastIter(out, r)).every((i) => i >= n)) return
    if (p.proc.exitCode !== null || p.proc.signalCode !== null || performance.now() > deadline) {
      throw new Error(`not every rank reached iteration ${n} (ompx ${p.proc.exitCode === null ? 'running' : `exited ${p.proc.exitCode}`})\nstdout:\n${out.slice(-2000)}\nstderr:\n${p.stderr()}`)
    }
    await Bun.sleep(50)
  }
}

/** Every I of the `rank R iter I` lines in `stdout` for rank r, in order. */
export function iterations(stdout: string, r: number): number[] {
  const re = new RegExp(`^rank ${r} iter (\\d+)$`)
  return lines(stdout).map((l) => re.exec(l)).filter(Boolean).map((m) => Number(m![1]))
}

/** Highest `rank R iter I` seen in `stdout` for rank r (0 if none). */
export function lastIter(stdout: string, r: number): number {
  return Math.max(0, ...iterations(stdout, r))
}

/** One stderr line, non-zero exit, no stack trace (the project's rule for user errors). */
export function expectUserError(r: RunResult, re: RegExp): void {
  expect(r.code).not.toBe(0)
  expect(r.code).not.toBeNull()
  expect(r.stderr).not.toMatch(/^\s+at\s/m)
  expect(lines(r.stderr)).toHaveLength(1)
  expect(r.stderr).toMatch(re)
}
