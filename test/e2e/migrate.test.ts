/**
 * `ompx migrate` end to end (issue #12) on simulated nodes n1:2, n2:2 and a spare n3:2: ranks of
 * a running job move to other nodes while the rest of the job runs on. With crs self (an SDK app
 * whose ranks exchange values through the kv store every few iterations) and crs criu (an
 * unmodified C counter with 64 MiB of state): the result equals an uninterrupted run, a moved
 * rank continues from where it was (no iteration done twice, none lost), `ompx ps` shows it on
 * its new node, and a checkpoint after the move restarts right elsewhere.
 */
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { lines, type OmpxProcess } from '../helpers'
import { byRank, counterIn, referenceLines } from '../fixtures/criu-helpers'
import { appArgv, expectRight, rankProcs, reference, snapshotRef, waitIters, type AppShape } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const HOSTS = 'n1:2,n2:2,n3:2'
const env = ckptTestEnv('migrate', { timeoutMs: 90_000, testTimeoutMs: 150_000, hosts: HOSTS, np: NP })
const SHAPE: AppShape = { iters: 200, size: 4, sleepMs: 20 }
const want = reference('app', SHAPE, NP)

interface MigrateJson {
  ranks: { rank: number; from: string; to: string; oldPid: number; newPid: number; bytes: number; downtimeMs: number }[]
  totals: { ranks: number; bytes: number }
}

/** `ompx migrate --json [args] <pid>`, which must succeed quietly. */
async function migrate(p: OmpxProcess, args: string[]): Promise<MigrateJson> {
  const r = await env.run(['migrate', '--json', ...args, String(p.pid)])
  expect([r.code, r.stderr]).toEqual([0, ''])
  return JSON.parse(r.stdout) as MigrateJson
}

/** Every `rank R iter N` line of `rank` exactly once, N = 10, 20, ... iters: nothing redone, nothing lost. */
function expectContinued(stdout: string, rank: number, iters: number): void {
  const seen = lines(stdout).filter((l) => l.startsWith(`rank ${rank} iter `))
  expect(seen).toEqual(Array.from({ length: iters / 10 }, (_, i) => `rank ${rank} iter ${(i + 1) * 10}`))
}

describe('crs self: an SDK app whose ranks talk through the kv store', () => {
  test('one rank onto the spare n3 (-t): the job ends right, the rank continued, ps shows it there', async () => {
    const p = env.start(env.snapDir(), appArgv(SHAPE))
    try {
      await waitIters(p, NP, 20)
      const m = await migrate(p, ['-r', '1', '-t', 'n3'])
      expect(m.ranks.map(({ rank, from, to }) => ({ rank, from, to }))).toEqual([{ rank: 1, from: 'n1', to: 'n3' }])
      expect(m.ranks[0]!.newPid).not.toBe(m.ranks[0]!.oldPid)
      expect(m.totals.bytes).toBeGreaterThan(4 * 1024 * 1024)
      const ps = (await rankProcs(p.pid, env.opts())).find((x) => x.rank === 1)!
      expect([ps.node, ps.pid]).toEqual(['n3', m.ranks[0]!.newPid])
      const r = await expectRight(p.done(), want, true)
      expectContinued(r.stdout, 1, SHAPE.iters)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('a whole node (--off n2), targets chosen automatically: both ranks go to the spare', async () => {
    const p = env.start(env.snapDir(), appArgv(SHAPE))
    try {
      await waitIters(p, NP, 20)
      const m = await migrate(p, ['--off', 'n2'])
      expect(m.ranks.map(({ rank, from, to }) => ({ rank, from, to })).sort((a, b) => a.rank - b.rank)).toEqual([
        { rank: 2, from: 'n2', to: 'n3' },
        { rank: 3, from: 'n2', to: 'n3' },
      ])
      const r = await expectRight(p.done(), want, true)
      for (const rank of [2, 3]) expectContinued(r.stdout, rank, SHAPE.iters)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('a checkpoint after a move lists the rank at its new node; --term and a restart elsewhere finish right', async () => {
    const dir = env.snapDir()
    const p = env.start(dir, appArgv(SHAPE))
    let ref = ''
    try {
      await waitIters(p, NP, 20)
      await migrate(p, ['--ranks', '0', '--onto', 'n3'])
      ;({ ref } = snapshotRef((await env.checkpoint(p, ['--term'])).stdout))
      expect((await p.done()).code).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
    const g = JSON.parse(await Bun.file(join(dir, ref, 'global.json')).text()) as { seqs: { procs: { rank: number; node: string }[] }[] }
    expect(g.seqs.at(-1)!.procs.find((x) => x.rank === 0)!.node).toBe('n3')
    await expectRight(env.restart(dir, ref, ['-H', 'n5:2,n6:2', '--launcher', 'local']), want)
  })
})

const COUNTER = counterIn(env.tmp)

describe('crs criu: an unmodified C program with 64 MiB of state', () => {
  test('rank 1 moves (target chosen: the spare); every rank prints exactly the uninterrupted lines', async () => {
    const args = ['--mib', '64', '--ticks', '300', '--interval-ms', '25']
    const ref = referenceLines([COUNTER, ...args.slice(0, 4), '--interval-ms', '0'])
    const p = env.start(env.snapDir(), [COUNTER, ...args], { crs: 'criu', extra: ['--tag-output'] })
    try {
      await p.waitFor(/^\[[^\]]+,1\]<stdout>:tick 10 /, 30_000)
      const m = await migrate(p, ['-r', '1'])
      expect(m.ranks.map(({ rank, from, to }) => ({ rank, from, to }))).toEqual([{ rank: 1, from: 'n1', to: 'n3' }])
      const r = await p.done()
      expect(r.code).toBe(0)
      const got = byRank(r.stdout)
      for (let rank = 0; rank < NP; rank++) expect([rank, got.get(rank)]).toEqual([rank, ref])
    } finally {
      p.signal('SIGKILL')
    }
  })
})
