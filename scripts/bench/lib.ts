/**
 * Shared helpers for scripts/bench/*: run one command with wall time and peak RSS, clean up
 * everything it started, and print results. Linux only (reads /proc).
 *
 * Peak RSS, per run (see docs/benchmarks.md for the verification):
 *  - selfKb: VmHWM of the measured process itself, sampled from /proc/<pid>/status while it runs.
 *    VmHWM is a high-water mark, so the last sample is the peak up to a few ms before exit.
 *  - selfAnonKb: the largest RssAnon seen in the same samples: the private (anonymous) part of
 *    the resident set. VmHWM also counts file-backed pages of the executable and its libraries
 *    (RssFile), which every process running the same binary shares through the page cache.
 *    RssAnon has no kernel high-water mark, so this is a sampled peak (every 2 ms).
 *  - daemons (only when opts.daemon is given): every process carrying the run's tag that the
 *    predicate calls a daemon (an `ompx orted`, Open MPI's `orted`, `hydra_pmi_proxy`), with
 *    their count and the max over them of each one's VmHWM and sampled peak RssAnon.
 *  - treeKb: GNU time's %M, i.e. ru_maxrss from wait4. Linux makes that max(the process's own
 *    peak, the peak of every descendant it reaped, transitively): a max, never a sum, but a fat
 *    helper daemon (hydra_pmi_proxy, an orted) can hide behind it. Bun's own
 *    Subprocess.resourceUsage() is unusable here: Bun forks before exec and Linux keeps the
 *    pre-exec copy's RSS (~25 MB of Bun) in ru_maxrss, so even `true` reads as 25 MB.
 *
 * Cleanup: every run gets a unique tag in its environment. Launchers move ranks into their own
 * process groups (Open MPI's odls does setpgid), so killing a process group is not enough; the
 * environment survives setpgid/setsid, so sweeping /proc/*\/environ for the tag finds them all.
 * After a clean exit the tree gets LINGER_MS to finish by itself before anything is killed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const GNU_TIME = '/usr/bin/time'
const SAMPLE_MS = 2
/** How long processes may outlive their launcher before they count as left behind. */
const LINGER_MS = 2000

export interface RunResult {
  ok: boolean
  timedOut: boolean
  exitCode: number | null
  wallMs: number
  /** User + system CPU of the command and everything it waited for (rusage; GNU time's own ~1 ms included). */
  cpuMs: number | null
  selfKb: number | null
  /** Sampled peak RssAnon of the measured process (private memory). */
  selfAnonKb: number | null
  treeKb: number | null
  /** Daemons seen (opts.daemon only): how many, and the max over them of VmHWM / peak RssAnon. */
  daemons: { count: number; hwmKb: number | null; anonKb: number | null } | null
  /** Processes still carrying the run's tag 2 s after the launcher exited (then killed): "pid comm state". */
  leftovers: string[]
  stderrFirstLine: string
}

const scratch = mkdtempSync(join(tmpdir(), 'ompx-bench-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
let seq = 0
// Tags of runs in flight, so an interrupted benchmark still leaves nothing behind.
const live = new Set<string>()
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const tag of live) sweep(tag)
    process.exit(130)
  })
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null // the process exited between listing and reading: normal
  }
}

/** Processes whose environment holds `tag`, as "pid comm state". Zombies have no environ: skipped. */
function tagged(tag: string): string[] {
  const needle = Buffer.from(tag)
  const found: string[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    let env: Buffer
    try {
      env = readFileSync(`/proc/${name}/environ`)
    } catch {
      continue
    }
    if (!env.includes(needle)) continue
    const what = /\((.*)\) (\S)/.exec(readText(`/proc/${name}/stat`) ?? '')
    found.push(`${name} ${what?.[1] ?? '?'} ${what?.[2] ?? '?'}`)
  }
  return found
}

/** SIGKILL every process carrying `tag`; returns what they were. */
export function sweep(tag: string): string[] {
  const found = tagged(tag)
  for (const p of found) {
    try {
      process.kill(Number(p.split(' ')[0]), 'SIGKILL')
    } catch {}
  }
  return found
}

/**
 * Give a finished launch's processes `graceMs` to go away by themselves, then kill the rest and
 * return them. The grace matters: a launcher may leave a short-lived helper on purpose (ompx's
 * reaper shell outlives `ompx run` by a few ms to clean up process groups and its state file).
 */
async function settle(tag: string, graceMs: number): Promise<string[]> {
  const until = performance.now() + graceMs
  while (tagged(tag).length > 0 && performance.now() < until) await Bun.sleep(10)
  return sweep(tag)
}

interface Peak {
  kb: number | null
  anonKb: number | null
}

/** Fold one /proc/<pid>/status into a peak; false if the process is gone or a zombie (no Vm* lines). */
function samplePeak(status: string, peak: Peak): boolean {
  const hwm = /^VmHWM:\s*(\d+) kB$/m.exec(status)
  if (!hwm) return false
  peak.kb = Math.max(peak.kb ?? 0, Number(hwm[1]))
  const anon = /^RssAnon:\s*(\d+) kB$/m.exec(status)
  if (anon) peak.anonKb = Math.max(peak.anonKb ?? 0, Number(anon[1]))
  return true
}

/** Peak VmHWM and RssAnon (kB) of the process GNU time forked, once it has exec'd (its comm is no longer "time"). */
function sampleSelf(timePid: number, state: Peak & { pid?: number }): void {
  if (state.pid === undefined) {
    const kids = readText(`/proc/${timePid}/task/${timePid}/children`)?.trim()
    if (!kids) return
    state.pid = Number(kids.split(' ')[0])
  }
  const status = readText(`/proc/${state.pid}/status`)
  if (!status) return
  const name = /^Name:\s*(.*)$/m.exec(status)?.[1]
  // Before exec the pid is time's fork; a zombie has no Vm* lines. Neither is the launcher's peak.
  if (name === 'time') return
  samplePeak(status, state)
}

/** Tells a launch's daemon from its other processes, by comm and argv (read from /proc only if asked). */
export type DaemonMatch = (comm: string, argv: () => string[]) => boolean

interface DaemonState {
  match: DaemonMatch
  needle: Buffer
  /** Pids without the tag: never looked at again (an environment does not change under us). */
  untagged: Set<number>
  /** Tagged pids that are not daemons (yet: a fork may still exec into one), re-checked each scan. */
  tagged: Set<number>
  found: Map<number, Peak & { gone: boolean }>
}

/**
 * Samples between scans of /proc for new daemons (known ones are sampled every time). 1: hydra's
 * proxies live a few tens of ms, and scanning every 5th sample (10 ms) missed some of them.
 */
const DISCOVER_EVERY = 1

/**
 * Find new daemons of the run (every DISCOVER_EVERY-th call) and sample the known ones. A daemon
 * whose parent is a daemon is a fork that has not exec'd its rank yet (orted forks, Bun's
 * posix_spawn): not counted. VmHWM is a high-water mark, so a daemon found late loses nothing
 * there as long as it is sampled once; only its RssAnon samples start late.
 */
function sampleDaemons(st: DaemonState, discover: boolean): void {
  if (discover) {
    // Candidates first, then drop those whose parent is a daemon: /proc need not list a parent
    // before its child, and both can turn up in the same scan.
    const candidates = new Map<number, number>() // pid -> ppid
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue
      const pid = Number(name)
      if (pid === process.pid || st.untagged.has(pid) || st.found.has(pid)) continue
      if (!st.tagged.has(pid)) {
        let env: Buffer
        try {
          env = readFileSync(`/proc/${pid}/environ`)
        } catch {
          continue
        }
        if (!env.includes(st.needle)) {
          st.untagged.add(pid)
          continue
        }
        st.tagged.add(pid)
      }
      const stat = readText(`/proc/${pid}/stat`)
      const m = stat && /\((.*)\) \S (\d+)/.exec(stat)
      if (!m) {
        st.tagged.delete(pid) // gone
        continue
      }
      const argv = () => (readText(`/proc/${pid}/cmdline`) ?? '').split('\0')
      if (st.match(m[1]!, argv)) candidates.set(pid, Number(m[2]))
    }
    for (const [pid, ppid] of candidates) {
      if (st.found.has(ppid) || candidates.has(ppid)) continue // a daemon's fork, before exec
      st.tagged.delete(pid)
      st.found.set(pid, { kb: null, anonKb: null, gone: false })
    }
  }
  for (const [pid, peak] of st.found) {
    if (peak.gone) continue
    const status = readText(`/proc/${pid}/status`)
    if (!status || !samplePeak(status, peak)) peak.gone = true
  }
}

/** Run `cmd` under GNU time with a timeout; measure it; kill anything it left behind. */
export async function measure(
  cmd: string[],
  opts: { timeoutMs: number; env?: Record<string, string>; daemon?: DaemonMatch },
): Promise<RunResult> {
  const tag = `OMPX_BENCH_TAG=${process.pid}.${++seq}.${Math.random().toString(36).slice(2)}`
  const rssFile = join(scratch, `rss-${seq}`)
  const [k, v] = tag.split('=') as [string, string]
  const env = { ...process.env, ...opts.env, [k]: v }
  const self: Peak & { pid?: number } = { kb: null, anonKb: null }
  const daemons: DaemonState | null = opts.daemon
    ? { match: opts.daemon, needle: Buffer.from(tag), untagged: new Set(), tagged: new Set(), found: new Map() }
    : null
  let tick = 0
  live.add(tag)
  const t0 = performance.now()
  const proc = Bun.spawn([GNU_TIME, '-f', '%M', '-o', rssFile, '--', ...cmd], {
    env,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  })
  let done = false
  let wallMs = 0
  const exited = proc.exited.then(() => {
    wallMs = performance.now() - t0 // taken first thing: everything below is bookkeeping
    done = true
  })
  const stderr = new Response(proc.stderr).text()
  const deadline = t0 + opts.timeoutMs
  while (!done && performance.now() < deadline) {
    sampleSelf(proc.pid, self)
    if (daemons) sampleDaemons(daemons, tick++ % DISCOVER_EVERY === 0)
    await Promise.race([exited, Bun.sleep(SAMPLE_MS)])
  }
  const timedOut = !done
  if (timedOut) {
    sweep(tag) // GNU time carries the tag too, so this ends the whole tree
    await exited
    wallMs = opts.timeoutMs
  }
  const leftovers = timedOut ? [] : await settle(tag, LINGER_MS)
  live.delete(tag)
  // Something unkillable could keep the pipe open; never wait on it for long.
  const err = await Promise.race([stderr, Bun.sleep(1000).then(() => '')])
  const rssText = readText(rssFile)?.trim().split('\n').pop()
  const treeKb = rssText && /^\d+$/.test(rssText) ? Number(rssText) : null
  return {
    ok: !timedOut && proc.exitCode === 0,
    timedOut,
    exitCode: proc.exitCode,
    wallMs,
    cpuMs: cpuOf(proc),
    selfKb: self.kb,
    selfAnonKb: self.anonKb,
    treeKb,
    daemons: daemons && {
      count: daemons.found.size,
      hwmKb: maxOrNull([...daemons.found.values()].map((d) => d.kb)),
      anonKb: maxOrNull([...daemons.found.values()].map((d) => d.anonKb)),
    },
    leftovers,
    stderrFirstLine: err.split('\n').find((l) => l.trim() !== '')?.trim() ?? '',
  }
}

function cpuOf(proc: Bun.Subprocess): number | null {
  const cpu = proc.resourceUsage()?.cpuTime
  return cpu ? Number(cpu.user + cpu.system) / 1000 : null
}

function maxOrNull(xs: (number | null)[]): number | null {
  const ns = xs.filter((x): x is number => x !== null)
  return ns.length ? Math.max(...ns) : null
}

/** Write a file into the benchmark's scratch directory (removed at exit); returns its path. */
export function scratchFile(name: string, text: string, mode = 0o644): string {
  const path = join(scratch, name)
  writeFileSync(path, text, { mode })
  return path
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** First PATH entry named `name`, or null. */
export function which(name: string): string | null {
  return Bun.which(name)
}

/** First non-empty line of a command's stdout+stderr (versions), or null if it cannot run. */
export async function firstLine(cmd: string[], match?: RegExp): Promise<string | null> {
  try {
    const p = Bun.spawn(cmd, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    const text = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text())
    clearTimeout(timer)
    const lines = text.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean)
    return (match ? lines.find((l) => match.test(l)) : lines[0]) ?? null
  } catch {
    return null
  }
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

export const fmtMs = (ms: number) => (ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms'
export const fmtMb = (kb: number) => (kb / 1024).toFixed(1) + ' MB'

// ---------------------------------------------------------------------------------------------
// For benchmarks that talk to a job while it runs (scripts/bench/checkpoint.ts).

/**
 * A run tag for a process tree started outside measure() (a job the benchmark talks to while it
 * runs): put `env` into its environment. An interrupted benchmark sweeps it like measure()'s
 * runs; `done()` gives the tree `graceMs` to go away by itself, then kills the rest and returns
 * it as "pid comm state".
 */
export function tagRun(): { env: Record<string, string>; done(graceMs?: number): Promise<string[]> } {
  const tag = `OMPX_BENCH_TAG=${process.pid}.${++seq}.${Math.random().toString(36).slice(2)}`
  const [k, v] = tag.split('=') as [string, string]
  live.add(tag)
  return {
    env: { [k]: v },
    async done(graceMs = LINGER_MS) {
      const left = await settle(tag, graceMs)
      live.delete(tag)
      return left
    },
  }
}

/** VmHWM (peak so far) and current RssAnon of a running process, in kB; null once it is gone. */
export function memOf(pid: number): { hwmKb: number; anonKb: number | null } | null {
  const peak: Peak = { kb: null, anonKb: null }
  const status = readText(`/proc/${pid}/status`)
  if (!status || !samplePeak(status, peak)) return null
  return { hwmKb: peak.kb!, anonKb: peak.anonKb }
}

/** User + system CPU a running process has used so far, in ms (clock ticks of 10 ms); null once it is gone. */
export function cpuMsOf(pid: number): number | null {
  const stat = readText(`/proc/${pid}/stat`)
  const f = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')
  return f && f.length > 13 ? (Number(f[11]) + Number(f[12])) * 10 : null
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length
}

/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function stdev(xs: number[]): number {
  if (xs.length < 2) return 0
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))
}

/** Throughput in MB/s, MB = 10^6 bytes (what dd prints). */
export const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
export const fmtRate = (mbPerS: number) => `${mbPerS.toFixed(0)} MB/s`
