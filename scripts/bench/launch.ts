/**
 * Launch benchmark: wall time and peak RSS of starting N ranks of `true`, for ompx and the peer
 * launchers side by side (Open MPI's mpirun, MPICH's mpiexec.hydra), in one run, on localhost.
 *
 *   bun scripts/bench/launch.ts [--runs 5] [--np 1,16,64,256] [--bin dist/ompx]
 *                               [--timeout 30] [--warmup 1] [--json] [--mpirun-stock]
 *
 * Peers missing (scripts/install-peers.sh installs them) show "n/a". Every launch is bounded by
 * --timeout seconds and everything it started is killed afterwards (see lib.ts). Method and the
 * latest results: docs/benchmarks.md.
 */
import { existsSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { resolve } from 'node:path'
import { GNU_TIME, firstLine, fmtMb, fmtMs, markdownTable, measure, median, type RunResult, which } from './lib'

const argv = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const runs = Number(opt('runs', '5'))
const nps = opt('np', '1,16,64,256').split(',').map(Number)
const bin = resolve(opt('bin', resolve(import.meta.dir, '../../dist/ompx')))
const timeoutMs = Number(opt('timeout', '30')) * 1000
const warmup = Number(opt('warmup', '1'))
const json = argv.includes('--json')
const mpirunStock = argv.includes('--mpirun-stock')
// A launcher that hangs keeps hanging: two timeouts end its cell instead of costing 5 x timeout.
const MAX_TIMEOUTS_PER_CELL = 2

interface Launcher {
  key: string
  path: string | null
  missing?: string
  argv(np: number): string[]
  env?: Record<string, string>
  version?: string | null
}

const asRoot = process.getuid?.() === 0
const launchers: Launcher[] = [
  {
    key: 'ompx',
    path: existsSync(bin) ? bin : null,
    missing: `${bin} not built (bun scripts/build.ts)`,
    argv: (np) => [bin, 'run', '-np', String(np), '--oversubscribe', '--', 'true'],
  },
  {
    key: 'mpirun',
    path: which('mpirun'),
    missing: 'mpirun not installed (Open MPI: scripts/install-peers.sh)',
    argv: (np) => ['mpirun', '--oversubscribe', '-np', String(np), 'true'],
    env: {
      // Open MPI refuses to start as root unless told twice.
      ...(asRoot ? { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' } : {}),
      // Open MPI 4.1 spawns >= 32 local ranks from a thread pool, and that races with ranks that
      // exit at once: about half the launches of 64 x `true` hang forever. Serial spawn does not.
      ...(mpirunStock ? {} : { OMPI_MCA_odls_base_max_threads: '1' }),
    },
  },
  {
    key: 'hydra',
    path: which('mpiexec.hydra'),
    missing: 'mpiexec.hydra not installed (MPICH: scripts/install-peers.sh)',
    // Hydra oversubscribes localhost without being asked.
    argv: (np) => ['mpiexec.hydra', '-n', String(np), 'true'],
  },
]

// ---------------------------------------------------------------------------------------------
// Multi-node case, to be added: 4 simulated nodes x 16 ranks on localhost (ompx's `local`
// launcher puts each node on 127.0.1.N; mpirun/hydra get a hostfile of those addresses).
// Return extra cells here; the table and JSON already key cells by a free-form `np` label.
function multiNodeCases(): { label: string; argv: Record<string, string[] | null> }[] {
  return [] // not implemented yet
}
// ---------------------------------------------------------------------------------------------

interface Cell {
  np: string
  launcher: string
  status: 'ok' | 'fail' | 'hang' | 'n/a'
  runs: RunResult[]
  medianWallMs?: number
  minWallMs?: number
  maxWallMs?: number
  medianSelfKb?: number
  medianTreeKb?: number
}

if (!existsSync(GNU_TIME)) {
  console.error(`${GNU_TIME} (GNU time) is missing: run scripts/install-peers.sh`)
  process.exit(2)
}
const present = launchers.filter((l) => l.path)
// Progress goes to stderr so stdout stays a clean table or JSON document.
const log = (s: string) => console.error(s)

for (const l of present) {
  l.version =
    l.key === 'ompx'
      ? await firstLine([bin, '--version'])
      : l.key === 'mpirun'
        ? await firstLine(['mpirun', '--version'])
        : await firstLine(['mpiexec.hydra', '--version'], /^Version:/)
}
// Page cache and dynamic loader warm-up; results discarded.
for (let i = 0; i < warmup; i++) for (const l of present) await measure(l.argv(1), { timeoutMs, env: l.env })
// What the harness itself adds to every wall time (Bun spawn + GNU time + exec): `true` alone.
const baseline = []
for (let i = 0; i < Math.max(runs, 3); i++) baseline.push((await measure(['true'], { timeoutMs })).wallMs)
const harnessMs = median(baseline)

const cells = new Map<string, Cell>()
for (const np of nps) {
  for (const l of launchers) cells.set(`${np}/${l.key}`, { np: String(np), launcher: l.key, status: l.path ? 'ok' : 'n/a', runs: [] })
  for (let r = 0; r < runs; r++) {
    // Rotate the order each round so no launcher always runs right after another's teardown.
    const order = present.map((_, i) => present[(i + r) % present.length]!)
    for (const l of order) {
      const cell = cells.get(`${np}/${l.key}`)!
      if (cell.status !== 'ok') continue
      const res = await measure(l.argv(np), { timeoutMs, env: l.env })
      cell.runs.push(res)
      if (res.timedOut) {
        if (cell.runs.filter((x) => x.timedOut).length >= MAX_TIMEOUTS_PER_CELL) cell.status = 'hang'
      } else if (!res.ok) cell.status = 'fail'
      log(`np=${np} ${l.key} run ${r + 1}: ${res.timedOut ? 'timeout' : res.ok ? fmtMs(res.wallMs) : `exit ${res.exitCode}`}`)
    }
  }
}
// The multi-node cells will run here, after the single-node ones.
if (multiNodeCases().length > 0) log('multi-node cases are not implemented yet: skipped')

for (const cell of cells.values()) {
  const good = cell.runs.filter((r) => r.ok)
  if (good.length === 0) {
    if (cell.status === 'ok' && cell.runs.length > 0) cell.status = 'hang' // timeouts only
    continue
  }
  const walls = good.map((r) => r.wallMs)
  cell.medianWallMs = median(walls)
  cell.minWallMs = Math.min(...walls)
  cell.maxWallMs = Math.max(...walls)
  const selfs = good.flatMap((r) => (r.selfKb === null ? [] : [r.selfKb]))
  const trees = good.flatMap((r) => (r.treeKb === null ? [] : [r.treeKb]))
  if (selfs.length) cell.medianSelfKb = median(selfs)
  if (trees.length) cell.medianTreeKb = median(trees)
  // A cell that succeeded sometimes and hung other times keeps its numbers; the note says so.
  if (cell.status !== 'fail') cell.status = 'ok'
}

const notes: string[] = [`harness overhead (spawn + GNU time of a bare \`true\`): ${fmtMs(harnessMs)}, included in every wall time`]
if (present.some((l) => l.key === 'mpirun') && !mpirunStock)
  notes.push('mpirun: OMPI_MCA_odls_base_max_threads=1 (stock Open MPI 4.1 hangs at N >= 32 here; --mpirun-stock to see)')
for (const l of launchers) if (!l.path) notes.push(`${l.key}: n/a, ${l.missing}`)
for (const cell of cells.values()) {
  const bad = cell.runs.filter((r) => !r.ok)
  const hung = bad.filter((r) => r.timedOut).length
  const failed = bad.find((r) => !r.timedOut)
  if (failed) notes.push(`${cell.launcher} np=${cell.np}: fail (exit ${failed.exitCode}): ${failed.stderrFirstLine || '(no stderr)'}`)
  if (hung) notes.push(`${cell.launcher} np=${cell.np}: ${hung} of ${cell.runs.length} runs hung (killed after ${timeoutMs / 1000} s)`)
  const left = cell.runs.flatMap((r) => r.leftovers)
  if (left.length) {
    const kinds = [...new Set(left.map((l) => l.split(' ').slice(1).join(' ')))].join(', ')
    notes.push(`${cell.launcher} np=${cell.np}: left ${left.length} processes behind over ${cell.runs.length} runs (${kinds}; killed)`)
  }
}

// Load average at the end: a busy machine (other builds, tests) inflates every wall time.
const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', kernel: release(), loadavg: loadavg().map((x) => +x.toFixed(2)) }
if (json) {
  const versions = Object.fromEntries(present.map((l) => [l.key, l.version]))
  const out = { date: new Date().toISOString(), machine, versions, runs, timeoutMs, harnessMs, notes, cells: [...cells.values()] }
  console.log(JSON.stringify(out, null, 2))
} else {
  const show = (c: Cell, what: 'wall' | 'rss') => {
    if (c.status !== 'ok') return c.status
    if (what === 'rss') return c.medianSelfKb !== undefined ? fmtMb(c.medianSelfKb) : '?'
    const hung = c.runs.filter((r) => r.timedOut).length
    return fmtMs(c.medianWallMs!) + (hung ? ` (${hung} hung)` : '')
  }
  const headers = ['N', ...launchers.flatMap((l) => [`${l.key} wall`, `${l.key} RSS`])]
  const rows = nps.map((np) => [String(np), ...launchers.flatMap((l) => [show(cells.get(`${np}/${l.key}`)!, 'wall'), show(cells.get(`${np}/${l.key}`)!, 'rss')])])
  console.log(`launch of N x \`true\`, median of ${runs} runs; ${machine.cpus} cores, ${machine.cpu}, Linux ${machine.kernel}, load ${machine.loadavg.join(' ')}, ${new Date().toISOString().slice(0, 10)}`)
  for (const l of present) console.log(`- ${l.key}: ${l.version ?? '?'}`)
  console.log()
  console.log(markdownTable(headers, rows))
  if (notes.length) console.log('\n' + notes.map((n) => `- ${n}`).join('\n'))
}
