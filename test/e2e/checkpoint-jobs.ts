/**
 * The set-up and the recurring steps of the checkpoint/restart e2e tests (checkpoint-*.test.ts,
 * and criu-job.test.ts through jobEnv), so that each test says only what is particular to it: a
 * per-file environment (leftover guard, timeouts, a private TMPDIR and fresh directories in it)
 * and, bound to it, `ompx run` of a job on simulated nodes, an `ompx checkpoint` that must
 * succeed (or, held at a rank, must fail without harm to seq 0), "let the job get so far, then
 * --term it", and `ompx restart` of a snapshot. What the tests read (fixtures, checksums,
 * snapshot files) is in checkpoint-common.ts.
 */
import { afterAll, expect, setDefaultTimeout } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { guardLeftovers, ompx, spawnOmpx, type OmpxProcess, type RunOpts, type RunResult } from '../helpers'
import { dirArgs, listedSeqs, rankProcs, snapshotRef, treeHash, waitIters } from './checkpoint-common'

/** The usual simulated nodes and ranks of a job. */
export const NODES = 'n1:2,n2:2'
export const NP = 4

export interface StartOpts extends RunOpts {
  /** Options of `ompx run` after the snapshot directory. */
  extra?: string[]
  /** The CRS component (`--mca crs <crs>`), none given when null. */
  crs?: string | null
}

/** Runs ompx with the options of the test file's environment (and of `with`). */
export interface JobEnv {
  opts(o?: RunOpts): RunOpts
  run(args: string[], o?: RunOpts): Promise<RunResult>
  /** `ompx run` of `argv` on the file's nodes, crs self, snapshots to `dir`. */
  start(dir: string, argv: string[], o?: StartOpts): OmpxProcess
  /** `ompx checkpoint [flags] <pid>` of job `p`, which must succeed (quiet: with nothing on stderr). */
  checkpoint(p: OmpxProcess, flags?: string[], quiet?: boolean): Promise<RunResult>
  /**
   * `ompx checkpoint [flags]` of job `p` (of ckpt-hold.ts), started once `hold.<rank>` in the
   * directory `hold` keeps that rank inside it; returned (not awaited) once the rank says it holds.
   */
  heldCheckpoint(p: OmpxProcess, hold: string, rank: number, flags?: string[]): Promise<OmpxProcess>
  /**
   * A checkpoint of ckpt-hold job `p` that must fail: a first one (seq 0, into `dir`) once every
   * rank is at iteration 20, then (once they are at `iters`, if given) a heldCheckpoint at `rank`,
   * which `during` makes fail; `p` is killed after that whatever happens. Then seq 0 must be the
   * only one listed and be intact. The ref and seq 0's files (treeHash).
   */
  failDuring(p: OmpxProcess, at: { dir: string; hold: string; rank: number; iters?: number }, during: (held: OmpxProcess) => Promise<void>): Promise<{ ref: string; before: Record<string, string> }>
  /**
   * Once `ready` (every rank at that iteration, or the promise resolved), `ompx checkpoint --term`
   * job `p`, which must end with 0; kills the job whatever happens. The snapshot's ref and seq, and
   * the job's result.
   */
  termAfter(p: OmpxProcess, ready: number | (() => Promise<unknown>), quiet?: boolean): Promise<{ ref: string; seq: number; job: RunResult }>
  /** `ompx restart [extra] <dir args> ref` run to its end, or started (`spawnRestart`). */
  restart(dir: string, ref: string, extra?: string[], o?: RunOpts): Promise<RunResult>
  spawnRestart(dir: string, ref: string, extra?: string[], o?: RunOpts): OmpxProcess
  /** Pid of rank `rank` of job `p` (from `ompx ps`). */
  rankPid(p: OmpxProcess, rank: number): Promise<number>
  /** The same, with `env` added to every command's environment. */
  with(env: Record<string, string>): JobEnv
}

/** A JobEnv of jobs on `hosts` with `np` ranks whose commands run with `opts` (ckptTestEnv's, or a file's own). */
export function jobEnv(opts: (o?: RunOpts) => RunOpts, hosts: string, np: number): JobEnv {
  const run = (args: string[], o: RunOpts = {}) => ompx(args, opts(o))
  const checkpoint = async (p: OmpxProcess, flags: string[] = [], quiet = false) => {
    const c = await run(['checkpoint', ...flags, String(p.pid)])
    if (quiet) expect(c.stderr).toBe('')
    expect(c.code).toBe(0)
    return c
  }
  const env: JobEnv = {
    opts,
    run,
    start: (dir, argv, { extra = [], crs = 'self', ...o } = {}) =>
      spawnOmpx(['run', '--launcher', 'local', '-H', hosts, '-np', String(np), ...(crs ? ['--mca', 'crs', crs] : []), ...dirArgs(dir), ...extra, '--', ...argv], opts(o)),
    checkpoint,
    async heldCheckpoint(p, hold, rank, flags = []) {
      writeFileSync(join(hold, `hold.${rank}`), '')
      const c = spawnOmpx(['checkpoint', ...flags, String(p.pid)], opts())
      await p.waitFor(new RegExp(`^rank ${rank} holding$`), 20_000)
      return c
    },
    async failDuring(p, { dir, hold, rank, iters }, during) {
      let ref = ''
      let before: Record<string, string> = {}
      try {
        await waitIters(p, np, 20)
        ;({ ref } = snapshotRef((await checkpoint(p)).stdout))
        before = treeHash(join(dir, ref, '0'))
        if (iters !== undefined) await waitIters(p, np, iters)
        await during(await env.heldCheckpoint(p, hold, rank))
      } finally {
        p.signal('SIGKILL')
      }
      rmSync(join(hold, `hold.${rank}`), { force: true })
      expect(listedSeqs(dir, ref)).toEqual([0])
      expect(treeHash(join(dir, ref, '0'))).toEqual(before)
      return { ref, before }
    },
    async termAfter(p, ready, quiet = false) {
      try {
        await (typeof ready === 'number' ? waitIters(p, np, ready) : ready())
        const { ref, seq } = snapshotRef((await checkpoint(p, ['--term'], quiet)).stdout)
        const job = await p.done()
        expect(job.code).toBe(0)
        return { ref, seq, job }
      } finally {
        p.signal('SIGKILL')
      }
    },
    restart: (dir, ref, extra = [], o = {}) => run(['restart', ...extra, ...dirArgs(dir), ref], o),
    spawnRestart: (dir, ref, extra = [], o = {}) => spawnOmpx(['restart', ...extra, ...dirArgs(dir), ref], opts(o)),
    async rankPid(p, rank) {
      const proc = (await rankProcs(p.pid, opts())).find((x) => x.rank === rank)
      expect(proc).toBeDefined()
      return proc!.pid
    },
    with: (added) => jobEnv((o = {}) => opts({ ...o, env: { ...added, ...o.env } }), hosts, np),
  }
  return env
}

export interface CkptEnvOptions {
  /** Hard limit of each ompx command. */
  timeoutMs: number
  /** bun's timeout of each test. */
  testTimeoutMs: number
  /** Where `start` runs jobs: NODES and NP unless given. */
  hosts?: string
  np?: number
}

/**
 * Per-file test environment: every test guarded against leftover processes, a private TMPDIR
 * (removed after the file) so session dirs, node dirs and snapshots of one file never meet
 * another's, fresh directories in it, and the JobEnv that uses it.
 */
export function ckptTestEnv(name: string, { timeoutMs, testTimeoutMs, hosts = NODES, np = NP }: CkptEnvOptions) {
  guardLeftovers()
  setDefaultTimeout(testTimeoutMs)
  const tmp = mkdtempSync(join(tmpdir(), `ompx-ckpt-${name}-`))
  afterAll(() => rmSync(tmp, { recursive: true, force: true }))
  let n = 0
  return {
    tmp,
    /** A fresh (not yet created) global snapshot directory. */
    snapDir: () => join(tmp, `snap-${++n}`),
    /** A fresh, created directory named `<prefix><n>`. */
    mkdir(prefix: string): string {
      const d = join(tmp, `${prefix}${++n}`)
      mkdirSync(d)
      return d
    },
    ...jobEnv((o: RunOpts = {}) => ({ timeoutMs, ...o, env: { TMPDIR: tmp, ...o.env } }), hosts, np),
  }
}
