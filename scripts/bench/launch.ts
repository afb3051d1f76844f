/**
 * Launch benchmark: wall time and peak RSS (VmHWM, and the private part, RssAnon) of starting N
 * ranks of `true`, for ompx and the peer launchers side by side (Open MPI's mpirun, MPICH's
 * mpiexec.hydra), in one run, on localhost. Then 4 simulated nodes x 16 ranks (127.0.1.1-4), with
 * the peak RSS of every node daemon as well. Then an MPICH program doing MPI_Init+MPI_Finalize
 * (16, 64 ranks, 4x16) under ompx and mpiexec.hydra (launch-mpich.ts).
 *
 *   bun scripts/bench/launch.ts [--runs 5] [--np 1,16,64,256] [--bin dist/ompx] [--no-multi]
 *                               [--no-mpich] [--timeout 30] [--warmup 1] [--json] [--mpirun-stock]
 *
 * Peers missing (scripts/install-peers.sh installs them) show "n/a". Every launch is bounded by
 * --timeout seconds and everything it started is killed afterwards (see lib.ts). Method and the
 * latest results: docs/benchmarks.md.
 */
import { existsSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { resolve } from 'node:path'
import { mpichCases } from './launch-mpich'
import { NODES, PER_NODE, launchCases, ompxDaemon } from './launch-cases'
import { launchTargets } from './launch-targets'
import { type DaemonMatch, GNU_TIME, firstLine, fmtMb, fmtMs, markdownTable, measure, median, type RunResult } from './lib'

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
const multi = !argv.includes('--no-multi')
const mpich = !argv.includes('--no-mpich')
// A launcher that hangs keeps hanging: two timeouts end its cell instead of costing 5 x timeout.
const MAX_TIMEOUTS_PER_CELL = 2

const { launchers, simNodes, multiNodeCases } = launchCases({ bin, mpirunStock, multi })

interface Cell {
  np: string
  launcher: string
  status: 'ok' | 'fail' | 'hang' | 'n/a'
  runs: RunResult[]
  medianWallMs?: number
  minWallMs?: number
  maxWallMs?: number
  medianSelfKb?: number
  medianSelfAnonKb?: number
  medianTreeKb?: number
  /** Multi-node cells: daemons per run (median), and medians over runs of the per-run max over daemons. */
  medianDaemons?: number
  medianDaemonKb?: number
  medianDaemonAnonKb?: number
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
type Job = { argv: string[]; env?: Record<string, string>; daemon?: DaemonMatch }
/** `runs` rounds over the launchers that have a job for this label, order rotated every round. */
async function runCells(label: string, jobs: Record<string, Job | null | undefined>) {
  for (const l of launchers) cells.set(`${label}/${l.key}`, { np: label, launcher: l.key, status: jobs[l.key] ? 'ok' : 'n/a', runs: [] })
  const have = present.filter((l) => jobs[l.key])
  for (let r = 0; r < runs; r++) {
    // Rotate the order each round so no launcher always runs right after another's teardown.
    const order = have.map((_, i) => have[(i + r) % have.length]!)
    for (const l of order) {
      const cell = cells.get(`${label}/${l.key}`)!
      if (cell.status !== 'ok') continue
      const job = jobs[l.key]!
      const res = await measure(job.argv, { timeoutMs, env: job.env, daemon: job.daemon })
      cell.runs.push(res)
      if (res.timedOut) {
        if (cell.runs.filter((x) => x.timedOut).length >= MAX_TIMEOUTS_PER_CELL) cell.status = 'hang'
      } else if (!res.ok) cell.status = 'fail'
      const d = res.daemons ? `, ${res.daemons.count} daemons` : ''
      log(`np=${label} ${l.key} run ${r + 1}: ${res.timedOut ? 'timeout' : res.ok ? fmtMs(res.wallMs) + d : `exit ${res.exitCode}`}`)
    }
  }
}
for (const np of nps) await runCells(String(np), Object.fromEntries(present.map((l) => [l.key, { argv: l.argv(np), env: l.env }])))
// The multi-node cells run after the single-node ones.
const multiCases = multiNodeCases()
for (const c of multiCases) await runCells(c.label, c.run)
// MPICH: MPI_Init + MPI_Finalize, ompx against hydra.
const mpiCases = mpich ? mpichCases({ bin, ...simNodes() }) : []
const mpiDaemon: Record<string, DaemonMatch> = { ompx: ompxDaemon(bin), hydra: (comm) => comm === 'hydra_pmi_proxy' }
if (Array.isArray(mpiCases)) {
  for (const c of mpiCases) {
    // Daemons are counted on the simulated nodes only (one node: ompx has none, hydra one proxy).
    const d = (k: string) => (c.label.endsWith('x16') ? mpiDaemon[k] : undefined)
    const jobs = { ompx: { argv: c.ompx, daemon: d('ompx') }, hydra: c.hydra && present.some((l) => l.key === 'hydra') ? { argv: c.hydra, daemon: d('hydra') } : null }
    await runCells(c.label, jobs)
  }
}

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
  const med = (xs: (number | null | undefined)[]) => {
    const ns = xs.filter((x): x is number => typeof x === 'number')
    return ns.length ? median(ns) : undefined
  }
  cell.medianSelfKb = med(good.map((r) => r.selfKb))
  cell.medianSelfAnonKb = med(good.map((r) => r.selfAnonKb))
  cell.medianTreeKb = med(good.map((r) => r.treeKb))
  cell.medianDaemons = med(good.map((r) => r.daemons?.count))
  cell.medianDaemonKb = med(good.map((r) => r.daemons?.hwmKb))
  cell.medianDaemonAnonKb = med(good.map((r) => r.daemons?.anonKb))
  // A cell that succeeded sometimes and hung other times keeps its numbers; the note says so.
  if (cell.status !== 'fail') cell.status = 'ok'
}

const notes: string[] = typeof mpiCases === 'string' ? [mpiCases] : []
notes.push(`harness overhead (spawn + GNU time of a bare \`true\`): ${fmtMs(harnessMs)}, included in every wall time`)
if (present.some((l) => l.key === 'mpirun') && !mpirunStock)
  notes.push('mpirun: OMPI_MCA_odls_base_max_threads=1 (stock Open MPI 4.1 hangs at N >= 32 here; --mpirun-stock to see)')
for (const l of launchers) if (!l.path) notes.push(`${l.key}: n/a, ${l.missing}`)
for (const cell of cells.values()) {
  const counts = new Set(cell.runs.filter((r) => r.ok && r.daemons).map((r) => r.daemons!.count))
  if (counts.size > 0 && [...counts].some((n) => n !== NODES))
    notes.push(`${cell.launcher} ${cell.np}: daemons seen per run: ${[...counts].join(', ')} (expected ${NODES})`)
}
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
  const mb = (kb: number | undefined) => (kb !== undefined ? fmtMb(kb) : '?')
  const show = (c: Cell, what: 'wall' | 'rss' | 'anon' | 'daemons' | 'drss' | 'danon') => {
    if (c.status !== 'ok') return c.status
    if (what === 'rss') return mb(c.medianSelfKb)
    if (what === 'anon') return mb(c.medianSelfAnonKb)
    if (what === 'daemons') return c.medianDaemons !== undefined ? String(c.medianDaemons) : '?'
    if (what === 'drss') return mb(c.medianDaemonKb)
    if (what === 'danon') return mb(c.medianDaemonAnonKb)
    const hung = c.runs.filter((r) => r.timedOut).length
    return fmtMs(c.medianWallMs!) + (hung ? ` (${hung} hung)` : '')
  }
  const headers = ['N', ...launchers.flatMap((l) => [`${l.key} wall`, `${l.key} RSS`, `${l.key} private`])]
  const rows = nps.map((np) => [
    String(np),
    ...launchers.flatMap((l) => (['wall', 'rss', 'anon'] as const).map((w) => show(cells.get(`${np}/${l.key}`)!, w))),
  ])
  console.log(`launch of N x \`true\`, median of ${runs} runs; ${machine.cpus} cores, ${machine.cpu}, Linux ${machine.kernel}, load ${machine.loadavg.join(' ')}, ${new Date().toISOString().slice(0, 10)}`)
  for (const l of present) console.log(`- ${l.key}: ${l.version ?? '?'}`)
  console.log()
  console.log(markdownTable(headers, rows))
  console.log('\nRSS: peak VmHWM of the launcher process; private: its peak RssAnon (sampled every 2 ms).')
  if (multiCases.length) {
    const mh = ['nodes x ranks', 'launcher', 'wall', 'RSS', 'private', 'daemons', 'daemon RSS', 'daemon private']
    const mrows = multiCases.flatMap((c) =>
      launchers.map((l) => {
        const cell = cells.get(`${c.label}/${l.key}`)!
        return [c.label, l.key, ...(['wall', 'rss', 'anon', 'daemons', 'drss', 'danon'] as const).map((w) => show(cell, w))]
      }),
    )
    console.log(`\n${NODES} simulated nodes x ${PER_NODE} ranks of \`true\` (127.0.1.1-${NODES}), one daemon per node, median of ${runs} runs`)
    console.log()
    console.log(markdownTable(mh, mrows))
    console.log('\ndaemon RSS / private: per run the max over its daemons of each one\'s peak VmHWM / peak RssAnon; median over runs.')
  }
  if (Array.isArray(mpiCases) && mpiCases.length) {
    const rows = mpiCases.map((c) => [c.label.slice(4), ...(['ompx', 'hydra'] as const).flatMap((k) => (['wall', 'rss', 'daemons', 'drss'] as const).map((w) => show(cells.get(`${c.label}/${k}`)!, w)))])
    console.log(`\nMPICH program calling only MPI_Init + MPI_Finalize (mpicc.mpich), median of ${runs} runs`)
    console.log()
    console.log(markdownTable(['ranks', 'ompx wall', 'ompx RSS', 'ompx daemons', 'ompx daemon RSS', 'hydra wall', 'hydra RSS', 'hydra daemons', 'hydra daemon RSS'], rows))
  }
  console.log('\nTargets (issue #16):\n')
  console.log(launchTargets((label, key) => cells.get(`${label}/${key}`), `${NODES}x${PER_NODE}`))
  if (notes.length) console.log('\n' + notes.map((n) => `- ${n}`).join('\n'))
}
