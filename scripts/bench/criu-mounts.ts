/**
 * What a crs criu rank's own mount namespace (/proc, /dev/shm; plugins/crs/criu/mounts.ts,
 * crs_criu_private_mounts) costs: launch (until the program runs), dump (--term) and restore
 * (until it runs again) of the same C program with N MiB, with and without the namespace,
 * alternating which goes first, through the plugin's library. Medians of --runs; each timed
 * step starts after a `sync`. Root and a working criu (scripts/install-criu.sh) needed.
 *
 *   bun scripts/bench/criu-mounts.ts [--mib 64] [--runs 7]
 */
import { $ } from 'bun'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findCriu } from '../../plugins/crs/criu/binary'
import { dumpTree } from '../../plugins/crs/criu/dump'
import { launchUnderCriu } from '../../plugins/crs/criu/launch'
import { restoreTree } from '../../plugins/crs/criu/restore'
import type { CriuTree } from '../../plugins/crs/criu/tree'

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1]! : dflt
}
const mib = Number(arg('mib', '64'))
const runs = Number(arg('runs', '7'))
const repo = join(import.meta.dir, '../..')
const criu = findCriu((await $`bash ${join(repo, 'scripts/install-criu.sh')}`.text()).trim())
const tmp = mkdtempSync(join(tmpdir(), 'ompx-criu-mounts-'))
const counter = join(tmp, 'criu-counter')
await $`cc -O2 -o ${counter} ${join(repo, 'test/fixtures/criu-counter.c')}`

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Resolves at the tree's first complete output line, draining the rest. */
function firstLine(tree: CriuTree): Promise<void> {
  const reader = tree.stdout.getReader()
  void tree.stderr.pipeTo(new WritableStream()).catch(() => {})
  return new Promise((res) => {
    void (async () => {
      let text = ''
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return res()
        text += new TextDecoder().decode(value)
        if (text.includes('\n')) res()
      }
    })()
  })
}

interface Times {
  launch: number[]
  dump: number[]
  restore: number[]
}
const times: Record<'with' | 'without', Times> = {
  with: { launch: [], dump: [], restore: [] },
  without: { launch: [], dump: [], restore: [] },
}

async function once(privateMounts: boolean, n: number): Promise<void> {
  const t = times[privateMounts ? 'with' : 'without']
  await $`sync`
  let start = performance.now()
  // The "start" banner comes first, then ticks once the memory is touched: time to the banner.
  const tree = await launchUnderCriu({ argv: [counter, '--mib', String(mib), '--interval-ms', '20'], privateMounts })
  await firstLine(tree)
  t.launch.push(performance.now() - start)
  await Bun.sleep(300)
  const dir = join(tmp, `${privateMounts ? 'with' : 'without'}-${n}`)
  await $`sync`
  start = performance.now()
  const info = await dumpTree({ criu, pid: tree.pid, dir, logLevel: 4 })
  t.dump.push(performance.now() - start)
  await tree.exited
  await $`sync`
  start = performance.now()
  const back = await restoreTree({ criu, dir, info, workDir: join(dir, 'work') })
  await firstLine(back)
  t.restore.push(performance.now() - start)
  back.kill('SIGKILL')
  await back.exited
  rmSync(dir, { recursive: true, force: true })
}

try {
  for (let n = 0; n < runs; n++) {
    const order = n % 2 ? [true, false] : [false, true]
    for (const privateMounts of order) await once(privateMounts, n)
  }
  const row = (step: keyof Times) => {
    const w = median(times.with[step])
    const wo = median(times.without[step])
    return `| ${step} | ${wo.toFixed(0)} ms | ${w.toFixed(0)} ms | ${(w - wo >= 0 ? '+' : '')}${(w - wo).toFixed(0)} ms |`
  }
  console.log(`${mib} MiB, ${runs} runs, medians, criu ${criu.version}`)
  console.log('| step | without (host /proc, /dev/shm) | with own mount namespace | difference |')
  console.log('| --- | --- | --- | --- |')
  for (const step of ['launch', 'dump', 'restore'] as const) console.log(row(step))
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
