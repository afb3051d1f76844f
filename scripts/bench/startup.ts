/**
 * Start-up benchmark (issue #16): how much of a short ompx command is ompx and how much is Bun.
 * Side by side in one run, interleaved (the order rotates every round), medians of --runs:
 *
 *   floor     a hello world compiled here with dist/ompx's own flags (scripts/build-flags.ts)
 *   version   `ompx version`
 *   ps        `ompx ps` with no HNP running (TMPDIR is an empty scratch dir; exits 1, as expected)
 *   run -np 1 `ompx run -np 1 -- true`, beside `mpiexec.hydra -n 1 true`
 *
 *   bun scripts/bench/startup.ts [--runs 21] [--bin dist/ompx] [--base OTHER_BIN] [--json]
 *
 * --base adds the same commands for another build (e.g. main's, built with
 * `bun scripts/build.ts --outfile /tmp/ompx-main`) so before and after share one run. Wall time and
 * peak RSS come from lib.ts's measure() (GNU time + VmHWM sampling; the harness cost is printed).
 * The last table holds the targets: ompx / floor or peer, the bound, met or missed.
 */
import { $ } from 'bun'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { COMPILE_FLAGS } from '../build-flags'
import { fmtMb, fmtMs, markdownTable, measure, median, which } from './lib'

const argv = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const runs = Number(opt('runs', '21'))
const bin = resolve(opt('bin', resolve(import.meta.dir, '../../dist/ompx')))
const base = argv.includes('--base') ? resolve(opt('base', '')) : null
const json = argv.includes('--json')
const log = (s: string) => console.error(s)

for (const b of [bin, base]) if (b && !existsSync(b)) throw new Error(`${b} not built (bun scripts/build.ts [--outfile ${b}])`)
const scratch = mkdtempSync(join(tmpdir(), 'ompx-startup-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
const hello = join(scratch, 'hello')
writeFileSync(`${hello}.ts`, "console.log('hello')\n")
await $`${process.execPath} build ${COMPILE_FLAGS} ${hello}.ts --outfile ${hello}`.quiet()
// ps must find no HNP: contact files live under $TMPDIR/ompx-<user>.
const noHnp = { TMPDIR: mkdtempSync(join(scratch, 'tmp-')) }
const hydra = which('mpiexec.hydra')

interface Case {
  key: string
  argv: string[]
  env?: Record<string, string>
  /** Exit code that means the command did what it is measured for. */
  exit?: number
}
const ompxCases = (b: string, tag: string): Case[] => [
  { key: `${tag}version`, argv: [b, 'version'] },
  { key: `${tag}ps`, argv: [b, 'ps'], env: noHnp, exit: 1 },
  { key: `${tag}run1`, argv: [b, 'run', '-np', '1', '--', 'true'] },
]
const cases: Case[] = [
  { key: 'hello', argv: [hello] },
  ...ompxCases(bin, ''),
  ...(base ? ompxCases(base, 'base:') : []),
  ...(hydra ? [{ key: 'hydra1', argv: [hydra, '-n', '1', 'true'] }] : []),
]

const walls = new Map<string, number[]>(cases.map((c) => [c.key, []]))
const rss = new Map<string, number[]>(cases.map((c) => [c.key, []]))
const cpu = new Map<string, number[]>(cases.map((c) => [c.key, []]))
const failures: string[] = []
for (const c of cases) await measure(c.argv, { timeoutMs: 30_000, env: c.env }) // warm-up
for (let r = 0; r < runs; r++) {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[(i + r) % cases.length]!
    const res = await measure(c.argv, { timeoutMs: 30_000, env: c.env })
    if (res.exitCode !== (c.exit ?? 0)) failures.push(`${c.key}: exit ${res.exitCode}: ${res.stderrFirstLine}`)
    walls.get(c.key)!.push(res.wallMs)
    if (res.treeKb !== null) rss.get(c.key)!.push(res.treeKb)
    if (res.cpuMs !== null) cpu.get(c.key)!.push(res.cpuMs)
  }
  log(`round ${r + 1}/${runs}`)
}
const harness: number[] = []
for (let i = 0; i < 5; i++) harness.push((await measure(['true'], { timeoutMs: 30_000 })).wallMs)

const wall = (k: string) => (walls.get(k)?.length ? median(walls.get(k)!) : NaN)
const peak = (k: string) => (rss.get(k)?.length ? median(rss.get(k)!) : NaN)
const cpuOf = (k: string) => (cpu.get(k)?.length ? median(cpu.get(k)!) : NaN)
const labels: Record<string, string> = {
  hello: 'compiled Bun hello world (floor)',
  version: '`ompx version`',
  ps: '`ompx ps` (no HNP)',
  run1: '`ompx run -np 1 -- true`',
  hydra1: '`mpiexec.hydra -n 1 true`',
}
const label = (k: string) => (k.startsWith('base:') ? `${labels[k.slice(5)]} (--base)` : labels[k]!)
const targets = [
  { what: '`ompx version`', key: 'version', peer: 'hello', bound: 1.3 },
  { what: '`ompx ps` (no HNP)', key: 'ps', peer: 'hello', bound: 1.3 },
  { what: '`ompx run -np 1 -- true`', key: 'run1', peer: 'hydra1', bound: 1.5 },
]
const targetRows = targets.flatMap((t) =>
  [t.key, ...(base ? [`base:${t.key}`] : [])].map((k) => {
    const ratio = wall(k) / wall(t.peer)
    const met = Number.isNaN(ratio) ? 'n/a' : ratio <= t.bound ? 'met' : 'missed'
    const cpuRatio = cpuOf(k) / cpuOf(t.peer)
    return [label(k), fmtMs(wall(k)), `${label(t.peer)} ${fmtMs(wall(t.peer))}`, `${ratio.toFixed(2)}x`, `<= ${t.bound}x`, met, `${cpuRatio.toFixed(2)}x`]
  }),
)
const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`
if (json) {
  const cells = Object.fromEntries(cases.map((c) => [c.key, { wallMs: wall(c.key), cpuMs: cpuOf(c.key), maxrssKb: peak(c.key), walls: walls.get(c.key) }]))
  console.log(JSON.stringify({ date: new Date().toISOString(), machine, runs, harnessMs: median(harness), cells, failures }, null, 2))
} else {
  console.log(`start-up, median of ${runs} interleaved runs; ${machine}; ${new Date().toISOString().slice(0, 10)}\n`)
  console.log(markdownTable(['command', 'wall', 'CPU', 'peak RSS'], cases.map((c) => [label(c.key), fmtMs(wall(c.key)), fmtMs(cpuOf(c.key)), fmtMb(peak(c.key))])))
  console.log()
  console.log(markdownTable(['what', 'ompx', 'peer / floor', 'ratio', 'target', '', 'CPU ratio'], targetRows))
  console.log(`\n- harness overhead (spawn + GNU time of a bare \`true\`): ${fmtMs(median(harness))}, in every wall time`)
  console.log('- peak RSS: GNU time %M (ru_maxrss: the process, or its largest waited-for child)')
  console.log('- targets are judged on wall; CPU (user + system, rusage) is context: on a busy machine it moves less than wall')
  for (const f of [...new Set(failures)]) console.log(`- unexpected exit: ${f}`)
}
