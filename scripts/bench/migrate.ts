/**
 * Migration benchmark (issue #12): 4 ranks x 256 MiB on 4 simulated nodes plus a spare, one rank
 * moved onto the spare with `ompx migrate`, against the whole-job way (`ompx checkpoint --term` +
 * `ompx restart` of all ranks) in the same rep, with crs self and crs criu.
 *
 *   bun scripts/bench/migrate.ts [--reps 3] [--ranks 4] [--mb 256] [--iters 60] [--bin dist/ompx]
 *       [--dir /tmp] [--timeout 180] [--no-self] [--no-criu]
 *
 * crs self: test/fixtures/ckpt-app.ts --iters N --mb M --sleep-ms 0 (SDK app; ranks exchange values
 * through the kv store), checksums checked against one uninterrupted run. crs criu (root only):
 * test/fixtures/criu-counter.c, compiled into the work dir, --mib M --interval-ms 5, every rank's
 * ticks checked to run 1, 2, 3, ... across the move. Method and the latest results:
 * docs/benchmarks.md, "Migration: one rank of 4 x 256 MiB".
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { wholeRound, spawnJob, type JobOptions, type PartSpec } from './migrate-job'
import { moveRound, sameChecksums, ticksInOrder, type MoveOptions } from './migrate-move'
import { summarize, table, verdicts, type PartResult, type PartSummary } from './migrate-report'
import { runFor, within } from './proc'
import { tagRun } from './lib'

const REPO = resolve(import.meta.dir, '../..')
const argv = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const reps = Number(opt('reps', '3'))
const ranks = Number(opt('ranks', '4'))
const mb = Number(opt('mb', '256'))
const iters = Number(opt('iters', '60'))
const timeoutMs = Number(opt('timeout', '180')) * 1000
const bin = resolve(opt('bin', join(REPO, 'dist/ompx')))
const log = (s: string) => console.error(s)
for (const [k, v] of [['reps', reps], ['ranks', ranks], ['mb', mb], ['iters', iters], ['timeout', timeoutMs]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k} needs a whole number >= 1`)
    process.exit(2)
  }
}
if (ranks < 2) {
  console.error('--ranks needs at least 2 (one moves, the others are watched)')
  process.exit(2)
}
if (!(await Bun.file(bin).exists())) {
  console.error(`${bin} not built (bun scripts/build.ts)`)
  process.exit(2)
}

const work = mkdtempSync(join(resolve(opt('dir', tmpdir())), 'ompx-bench-mig-'))
process.on('exit', () => rmSync(work, { recursive: true, force: true }))
const hosts = Array.from({ length: ranks + 1 }, (_, i) => `n${i + 1}:1`).join(',')
const spare = `n${ranks + 1}`
const MOVED = 1
const leftovers: string[] = []
const jobTmp = join(work, 't') // short: the jobs' app sockets live under it
mkdirSync(jobTmp)

function jobOptions(name: string, env: Record<string, string>): JobOptions {
  const snap = join(work, `snap-${name}`)
  mkdirSync(snap, { recursive: true })
  return { bin, ranks, hosts, snap, env: { TMPDIR: jobTmp, ...env }, timeoutMs, leftovers }
}

const selfSpec: PartSpec = {
  name: 'self',
  prog: [process.execPath, join(REPO, 'test/fixtures/ckpt-app.ts'), '--iters', String(iters), '--mb', String(mb), '--sleep-ms', '0'],
  count: (t) => (/^rank \d+ iter (\d+)$/.exec(t) ? Number(/ (\d+)$/.exec(t)![1]) : null),
  readyAt: 20,
  historyMs: 0,
}

/** The checksums of an uninterrupted run of the self part's program. */
async function reference(o: JobOptions): Promise<Map<number, string>> {
  const tag = tagRun()
  const job = spawnJob([bin, 'run', '--launcher', 'local', '-H', hosts, '-np', String(ranks), '--mca', 'crs', 'self', '--mca', 'sstore_base_global_snapshot_dir', o.snap, '--tag-output', '--', ...selfSpec.prog], { ...o.env, ...tag.env })
  const code = await within(job.exited, timeoutMs)
  if (code === 'timeout') await job.kill()
  await within(job.out.done, 5000)
  leftovers.push(...(await tag.done()))
  const want = new Map(job.out.lines.flatMap((l) => {
    const m = /^rank (\d+) checksum ([0-9a-f]{8})$/.exec(l.text)
    return m ? [[Number(m[1]), m[2]!] as [number, string]] : []
  }))
  if (code !== 0 || want.size !== ranks) throw new Error(`the uninterrupted run failed (${code}): ${(await within(job.err, 1000)).toString().trim().split('\n').pop()}`)
  return want
}

async function part(spec: PartSpec, o: JobOptions, verify: MoveOptions['verify'], endsByItself: boolean): Promise<PartResult> {
  const res: PartResult = { name: spec.name, skipped: null, moves: [], wholes: [], errors: [] }
  const mo: MoveOptions = { ...o, moved: MOVED, onto: spare, verify, endsByItself }
  for (let r = 0; r < reps; r++) {
    // Alternate which way goes first, so neither always finds the page cache warmer.
    const order = r % 2 === 0 ? ['move', 'whole'] : ['whole', 'move']
    for (const way of order) {
      try {
        if (way === 'move') {
          const m = await moveRound(spec, mo)
          res.moves.push(m)
          log(`${spec.name} rep ${r + 1} move: downtime ${m.downtimeMs} ms, line gap ${Math.round(m.gapMs)} ms, tool ${Math.round(m.toolMs)} ms, ${(m.bytes / 1048576).toFixed(1)} MiB, others ${m.othersRatio.toFixed(2)} (before-window ${Math.round(m.beforeMs)} ms), timing ${JSON.stringify(m.timing)}`)
        } else {
          const w = await wholeRound(spec, o)
          res.wholes.push(w)
          log(`${spec.name} rep ${r + 1} whole: checkpoint --term ${Math.round(w.ckptMs)} ms, restart ${Math.round(w.restartMs)} ms (first lines ${Math.round(w.restartLineMs)} ms), ${(w.bytes / 1048576).toFixed(1)} MiB`)
        }
      } catch (err) {
        res.errors.push(`rep ${r + 1} ${way}: ${(err as Error).message}`)
        log(`${spec.name} rep ${r + 1} ${way} FAILED: ${(err as Error).message}`)
      }
    }
  }
  return res
}

const load0 = loadavg()
log(`load average before: ${load0.map((x) => x.toFixed(2)).join(' ')}; ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${release()}`)
const results: PartResult[] = []

if (!argv.includes('--no-self')) {
  const o = jobOptions('self', {})
  try {
    const want = await reference(o)
    log(`self: uninterrupted checksums ${[...want.values()].join(' ')}`)
    results.push(await part(selfSpec, o, sameChecksums(want), true))
  } catch (err) {
    results.push({ name: 'self', skipped: (err as Error).message, moves: [], wholes: [], errors: [] })
  }
}

if (!argv.includes('--no-criu')) {
  let why: string | null = null
  let criu = ''
  const counter = join(work, 'criu-counter')
  if (process.getuid?.() !== 0) why = 'not root: crs criu needs root'
  else {
    const inst = await runFor(['bash', join(REPO, 'scripts/install-criu.sh')], 900_000)
    criu = inst.out.trim()
    if (inst.code !== 0 || !criu) why = `scripts/install-criu.sh failed: ${inst.err.trim().split('\n').pop()}`
    else {
      const cc = await runFor(['cc', '-O2', '-o', counter, join(REPO, 'test/fixtures/criu-counter.c')], 60_000)
      if (cc.code !== 0) why = `cc failed: ${cc.err.trim()}`
    }
  }
  if (why) {
    log(`crs criu part skipped: ${why}`)
    results.push({ name: 'criu', skipped: why, moves: [], wholes: [], errors: [] })
  } else {
    const spec: PartSpec = {
      name: 'criu',
      prog: [counter, '--mib', String(mb), '--interval-ms', '5'],
      count: (t) => (/^tick (\d+) /.exec(t) ? Number(/^tick (\d+) /.exec(t)![1]) : null),
      readyAt: 20,
      historyMs: 4000,
    }
    results.push(await part(spec, jobOptions('criu', { OMPX_CRIU: criu }), ticksInOrder(spec, ranks), false))
  }
}

const load1 = loadavg()
const sums: PartSummary[] = results.map(summarize).filter((s): s is PartSummary => s !== null)
console.log(`ompx migrate benchmark: ${ranks} ranks x ${mb} MiB on ${hosts} (simulated, --launcher local), rank ${MOVED} -> ${spare}`)
console.log(`load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${cpus().length} cores`)
console.log('')
if (sums.length) console.log(table(sums, ranks, mb), '\n')
for (const v of verdicts(sums)) console.log(`- ${v}`)
for (const r of results) {
  if (r.skipped) console.log(`- crs ${r.name}: SKIPPED: ${r.skipped}`)
  for (const e of r.errors) console.log(`- crs ${r.name} FAILED ${e}`)
}
if (leftovers.length) console.log(`- left behind and killed: ${leftovers.join('; ')}`)
process.exit(results.some((r) => r.errors.length) || leftovers.length ? 1 : 0)
