/**
 * Checkpoint under flat-out output (issue 13, item 3): two ranks of test/fixtures/flood.c write
 * stdout as fast as they can (~500 MB/s each, 64 KiB writes), ompx run's stdout goes through a
 * pipe to `cat > /dev/null`; after --warm seconds `ompx checkpoint --timing` is timed (wall
 * time of the tool, and the phases it reports), and the resident memory of ompx run and its
 * daemons is read at that moment. Cases: crs self through `ompx shim` and crs criu (root), on
 * the in-process node (-H n1:2) and on two `ompx orted` nodes (-H n1:1,n2:1). Every binary given
 * runs every case, interleaved, so an older build is compared side by side in the same run:
 *
 *   bun scripts/bench/output-ckpt.ts [--bin dist/ompx,/tmp/old/dist/ompx] [--reps 3] [--warm 2]
 *       [--no-criu]
 *
 * Results: docs/benchmarks.md, "Checkpoint under output".
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { childrenOf } from './proc'
import { markdownTable, median, tagRun } from './lib'

const argv = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const bins = opt('bin', resolve(import.meta.dir, '../../dist/ompx')).split(',').map((b) => resolve(b))
const reps = Number(opt('reps', '3'))
const warmMs = Number(opt('warm', '2')) * 1000
const criu = !argv.includes('--no-criu') && process.getuid?.() === 0
const work = mkdtempSync(join(tmpdir(), 'ompx-bench-output-'))
const flood = join(work, 'flood')
if (Bun.spawnSync(['cc', '-O2', '-o', flood, resolve(import.meta.dir, '../../test/fixtures/flood.c')]).exitCode !== 0) throw new Error('cc flood.c failed')

function rssMiB(pids: number[]): number {
  let kb = 0
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
    } catch {}
  }
  return kb / 1024
}

/** ompx run and its `ompx orted` children. */
function runtimePids(run: number): number[] {
  return [run, ...childrenOf(run).filter((c) => /\borted\b/.test(readFileSync(`/proc/${c}/cmdline`, 'utf8').replaceAll('\0', ' ')))]
}

interface Sample {
  ok: boolean
  wallMs: number
  totalMs: number
  rssMiB: number
}

async function once(bin: string, crs: string, hosts: string): Promise<Sample> {
  const tag = tagRun()
  const snap = join(work, `snap-${Math.random().toString(36).slice(2)}`)
  const prog = crs === 'self' ? [bin, 'shim', '--', flood, '0'] : [flood, '0']
  const cmd = [bin, 'run', '--launcher', 'local', '-H', hosts, '-np', '2', '--mca', 'crs', crs, '--mca', 'sstore_base_global_snapshot_dir', snap, '--', ...prog]
  const run = Bun.spawn(['sh', '-c', 'exec "$@" | cat > /dev/null', 'sh', ...cmd], { env: { ...process.env, ...tag.env }, stdout: 'ignore', stderr: 'ignore', detached: true })
  try {
    await Bun.sleep(warmMs)
    const ompx = childrenOf(run.pid).find((c) => readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('\0run\0'))
    if (!ompx) return { ok: false, wallMs: 0, totalMs: 0, rssMiB: 0 }
    const t0 = performance.now()
    const c = Bun.spawnSync([bin, 'checkpoint', '--timing', String(ompx)], { timeout: 120_000 })
    const wallMs = performance.now() - t0
    const rss = rssMiB(runtimePids(ompx))
    const total = /^Total\s+([\d.]+) s/m.exec(c.stdout.toString())
    return { ok: c.exitCode === 0, wallMs, totalMs: total ? Number(total[1]) * 1000 : 0, rssMiB: rss }
  } finally {
    try {
      process.kill(-run.pid, 'SIGKILL')
    } catch {}
    await tag.done(500)
    rmSync(snap, { recursive: true, force: true })
  }
}

const cases: [string, string][] = [
  ['self', 'n1:2'],
  ['self', 'n1:1,n2:1'],
  ...(criu ? ([['criu', 'n1:2'], ['criu', 'n1:1,n2:1']] as [string, string][]) : []),
]
const results = new Map<string, Sample[]>()
for (let rep = 0; rep < reps; rep++) {
  for (const [crs, hosts] of cases) {
    for (const bin of bins) {
      const s = await once(bin, crs, hosts)
      const key = `${bin}|${crs}|${hosts}`
      results.set(key, [...(results.get(key) ?? []), s])
      console.error(`rep ${rep + 1} ${crs} ${hosts} ${bin}: ${s.ok ? `${s.wallMs.toFixed(0)} ms, ${s.rssMiB.toFixed(0)} MiB` : 'FAILED'}`)
    }
  }
}
const rows = [...results].map(([key, ss]) => {
  const [bin, crs, hosts] = key.split('|')
  const ok = ss.filter((s) => s.ok)
  const med = (f: (s: Sample) => number) => (ok.length ? median(ok.map(f)) : NaN)
  return [bin!, `crs ${crs}`, hosts === 'n1:2' ? 'in-process' : '2 orted', `${ok.length}/${ss.length}`, `${(med((s) => s.wallMs) / 1000).toFixed(2)} s`, `${(med((s) => s.totalMs) / 1000).toFixed(2)} s`, `${med((s) => s.rssMiB).toFixed(0)} MiB`]
})
console.log(markdownTable(['binary', 'crs', 'nodes', 'ok', 'checkpoint (wall, median)', 'Total (--timing)', 'RSS ompx run + orteds'], rows))
rmSync(work, { recursive: true, force: true })
