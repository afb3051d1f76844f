/**
 * Helpers for end-to-end tests: run the compiled binary (OMPX_BIN or dist/ompx) as a real
 * process in its own session, with a hard timeout, and make sure no process of a test survives it.
 *
 *   import { ompx, guardLeftovers } from '../helpers'
 *   guardLeftovers()                       // per-test marker + leftover check in afterEach
 *   test('x', async () => { const r = await ompx(['run', '-np', '2', 'true']); expect(r.code).toBe(0) })
 *
 * Orphan guard: every test gets a fresh marker, passed to ompx as OMPX_TEST_MARK=<marker>. ompx passes
 * its environment through to the ranks, so any process whose /proc/<pid>/environ holds the marker
 * belongs to this test. After the test, `guardLeftovers` waits briefly for them to go, kills what is
 * left and fails the test naming them.
 */
import { afterEach, beforeEach } from 'bun:test'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const REPO = join(import.meta.dir, '..')
export const OMPX = process.env.OMPX_BIN ?? join(REPO, 'dist', 'ompx')
export const FIXTURES = join(import.meta.dir, 'fixtures')
export const MARK_VAR = 'OMPX_TEST_MARK'

export interface RunOpts {
  /** Extra variables on top of process.env (and the test marker). */
  env?: Record<string, string | undefined>
  /** Text fed to ompx's stdin, then closed. Without it stdin is /dev/null. */
  stdin?: string
  /** Hard limit: the whole process group and every marked process is killed, then the call throws. */
  timeoutMs?: number
  cwd?: string
  /** Read stdout as fast as it comes but keep only its last 64 KiB (a job writing flat out). */
  tailStdout?: boolean
}

export interface RunResult {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
  ms: number
}

let mark = newMark()
/** The marker of the running test (a fresh one per test when `guardLeftovers()` is used). */
export const currentMark = () => mark
export function newMark(): string {
  return `m${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
}

function buildEnv(extra?: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...process.env, ...extra, [MARK_VAR]: mark })) if (v !== undefined) env[k] = v
  return env
}

function killGroup(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, sig)
  } catch {}
}

/** Run `ompx ...args` to completion and collect its output. */
export async function ompx(args: string[], opts: RunOpts = {}): Promise<RunResult> {
  const p = spawnOmpx(args, opts)
  return p.done()
}

export interface OmpxProcess {
  pid: number
  proc: Bun.Subprocess<'pipe', 'pipe', 'pipe'>
  /** stdout / stderr received so far. */
  stdout(): string
  stderr(): string
  /** Resolve with the first complete stdout (or stderr) line matching `re`; throw after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number, stream?: 'stdout' | 'stderr'): Promise<string>
  /** Send a signal to ompx itself (not its group). */
  signal(sig: NodeJS.Signals): void
  /** Wait for exit (with the hard timeout of the call) and return everything. */
  done(): Promise<RunResult>
}

/** Start ompx and return at once; for long-running jobs that a test talks to. */
export function spawnOmpx(args: string[], opts: RunOpts = {}): OmpxProcess {
  return spawnArgv([OMPX, ...args], opts)
}

/** Run a shell command line (pipes, redirections) with $OMPX set to the binary, like `ompx()`. */
export async function shell(script: string, opts: RunOpts = {}): Promise<RunResult> {
  return spawnArgv(['sh', '-c', script], { ...opts, env: { OMPX, ...opts.env } }).done()
}

function spawnArgv(argv: string[], opts: RunOpts): OmpxProcess {
  const started = performance.now()
  const myMark = mark
  const proc = Bun.spawn(argv, {
    env: buildEnv(opts.env),
    cwd: opts.cwd,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    detached: true,
  })
  // ompx may exit before reading all of it (as mpirun does when no rank wants more): EPIPE here
  // is the expected outcome of such a test, not a failure of the harness.
  const ignore = () => {}
  try {
    if (opts.stdin !== undefined) Promise.resolve(proc.stdin.write(opts.stdin)).catch(ignore)
    Promise.resolve(proc.stdin.end()).catch(ignore)
  } catch {
    // Closed already.
  }
  const buf = { stdout: '', stderr: '' }
  const waiters: (() => void)[] = []
  const pump = async (name: 'stdout' | 'stderr', stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder()
    for await (const chunk of stream) {
      buf[name] += dec.decode(chunk, { stream: true })
      if (name === 'stdout' && opts.tailStdout && buf.stdout.length > 128 * 1024) buf.stdout = buf.stdout.slice(-64 * 1024)
      for (const w of waiters.splice(0)) w()
    }
    buf[name] += dec.decode()
  }
  const pumps = Promise.all([pump('stdout', proc.stdout), pump('stderr', proc.stderr)])
  let timedOut = false
  const limit = opts.timeoutMs ?? 30_000
  const timer = setTimeout(() => {
    timedOut = true
    killGroup(proc.pid)
    for (const pid of findMarked(myMark)) killGroup(pid), kill(pid)
  }, limit)
  const exited = proc.exited.then(async () => {
    clearTimeout(timer)
    // Ranks may still hold the pipes; don't wait for them forever.
    await Promise.race([pumps, Bun.sleep(2000)])
    for (const w of waiters.splice(0)) w()
    return {
      code: proc.exitCode,
      signal: proc.signalCode ?? null,
      stdout: buf.stdout,
      stderr: buf.stderr,
      ms: Math.round(performance.now() - started),
    } as RunResult
  })
  let finished = false
  exited.then(() => (finished = true))
  return {
    pid: proc.pid,
    proc,
    stdout: () => buf.stdout,
    stderr: () => buf.stderr,
    async waitFor(re, timeoutMs = 10_000, stream = 'stdout') {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        const lines = buf[stream].split('\n').slice(0, -1)
        const hit = lines.find((l) => re.test(l))
        if (hit !== undefined) return hit
        const left = deadline - performance.now()
        if (finished || left <= 0) {
          throw new Error(
            `no ${stream} line matching ${re} ${finished ? 'before ompx exited' : `within ${timeoutMs} ms`}\n` +
              `stdout:\n${buf.stdout}\nstderr:\n${buf.stderr}`,
          )
        }
        await new Promise<void>((res) => {
          waiters.push(res)
          setTimeout(res, Math.min(left, 200))
        })
      }
    },
    signal(sig) {
      kill(proc.pid, sig)
    },
    async done() {
      const r = await exited
      if (timedOut) {
        throw new Error(
          `${argv.join(' ')} did not finish within ${limit} ms (killed)\nstdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr.slice(-2000)}`,
        )
      }
      return r
    },
  }
}

function kill(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, sig)
  } catch {}
}

/** Pids of live (non-zombie) processes whose environment holds `marker`. */
export function findMarked(marker: string): number[] {
  const needle = `${MARK_VAR}=${marker}\0`
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(needle)) out.push(Number(d))
    } catch {}
  }
  return out
}

/** Processes of `marker` still alive after waiting up to `graceMs` for them to exit. */
export async function leftovers(marker = mark, graceMs = 3000): Promise<number[]> {
  const deadline = performance.now() + graceMs
  for (;;) {
    const pids = findMarked(marker)
    if (!pids.length || performance.now() >= deadline) return pids
    await Bun.sleep(50)
  }
}

function describePid(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`
  } catch {
    return `${pid}`
  }
}

/** Kill everything carrying `marker`; returns descriptions of what was killed. */
export function killMarked(marker = mark): string[] {
  const pids = findMarked(marker)
  const names = pids.map(describePid)
  for (const pid of pids) kill(pid, 'SIGCONT'), kill(pid)
  return names
}

/**
 * Give each test of the file a fresh marker and fail it if any of its processes outlive it
 * (they are killed first, so one failure doesn't cascade into the next test).
 */
export function guardLeftovers(graceMs = 3000): void {
  beforeEach(() => {
    mark = newMark()
  })
  afterEach(async () => {
    const pids = await leftovers(mark, graceMs)
    if (!pids.length) return
    const names = killMarked(mark)
    throw new Error(`leftover processes after the test (killed): ${names.join('; ')}`)
  })
}

/** Lines of `text`, without the empty string after a final newline. */
export function lines(text: string): string[] {
  const l = text.split('\n')
  if (l.at(-1) === '') l.pop()
  return l
}

/** Assert-style check for user errors: non-zero exit, exactly one stderr line, no stack trace. */
export function userErrorProblems(r: RunResult): string[] {
  const problems: string[] = []
  const err = lines(r.stderr)
  if (r.code === 0 || r.code === null) problems.push(`exit code ${r.code} (signal ${r.signal})`)
  if (err.length !== 1) problems.push(`${err.length} stderr lines`)
  if (err.some((l) => /^\s+at\s/.test(l))) problems.push('stack trace on stderr')
  return problems
}

/** Poll `cond` every 50 ms until it holds; throw naming `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await Bun.sleep(50)
  }
}

/** A process's argv joined by spaces ('' once it is gone). */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()
  } catch {
    return ''
  }
}

/** Whether `pid` is alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** Write a hostfile of simulated nodes (`<name> slots=<n> launcher=local`) and return its path. */
export function simHostfile(path: string, nodes: [name: string, slots: number][]): string {
  writeFileSync(path, nodes.map(([n, s]) => `${n} slots=${s} launcher=local\n`).join(''))
  return path
}
