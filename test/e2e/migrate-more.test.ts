/**
 * More of `ompx migrate` end to end (issue #12, "Tests"), on simulated nodes n1:2, n2:2 running
 * ranks 0-3 and a spare n3:2: a shell program under `ompx shim` moves and counts on from where it
 * was; two ranks move at once (onto an explicit spare, and to targets the HNP picks); a rank asks
 * from inside (requestMigrate) for a peer to leave its node; crs criu with --hold stops the other
 * ranks for the move; and the tool's `-s` progress lines. Every job ends as an uninterrupted run.
 * The failures of a round ("Nothing lost") are in migrate-failures.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { FIXTURES, lines, OMPX, spawnOmpx, waitUntil, type OmpxProcess } from '../helpers'
import { byRank, counterIn, referenceLines } from '../fixtures/criu-helpers'
import { BUN, CKPT_LOOP, expectRight, procState, rankProcs, reference, waitIters, type AppShape } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const env = ckptTestEnv('migrate-more', { timeoutMs: 90_000, testTimeoutMs: 150_000, hosts: 'n1:2,n2:2,n3:2', np: NP })
const SHAPE: AppShape = { iters: 200, size: 4, sleepMs: 20 }
/** migrate-app.ts computes what ckpt-app.ts does: ckpt-app's reference is its own. */
const want = reference('app', SHAPE, NP)
const MIGRATE_APP = join(FIXTURES, 'migrate-app.ts')
const migrateApp = (...extra: string[]) => [BUN, MIGRATE_APP, '--iters', String(SHAPE.iters), '--mb', String(SHAPE.size), '--sleep-ms', String(SHAPE.sleepMs), ...extra]

interface Moved {
  rank: number
  from: string
  to: string
  oldPid: number
  newPid: number
}

/** `ompx migrate --json [args] <pid>`, which must succeed quietly: the moved ranks by rank. */
async function migrate(p: OmpxProcess, args: string[]): Promise<Moved[]> {
  const r = await env.run(['migrate', '--json', ...args, String(p.pid)])
  expect([r.code, r.stderr]).toEqual([0, ''])
  return (JSON.parse(r.stdout) as { ranks: Moved[] }).ranks.sort((a, b) => a.rank - b.rank)
}

/** Every `rank R iter N` line of `rank` exactly once, N = 10, 20, ... iters: nothing redone, nothing lost. */
function expectContinued(stdout: string, rank: number, iters: number): void {
  const seen = lines(stdout).filter((l) => l.startsWith(`rank ${rank} iter `))
  expect(seen).toEqual(Array.from({ length: iters / 10 }, (_, i) => `rank ${rank} iter ${(i + 1) * 10}`))
}

/** `ompx ps` shows each moved rank on its new node with its new pid. */
async function expectWhereMoved(p: OmpxProcess, moved: Moved[]): Promise<void> {
  const ps = await rankProcs(p.pid, env.opts())
  for (const m of moved) expect(ps.find((x) => x.rank === m.rank)).toMatchObject({ node: m.to, pid: m.newPid })
}

describe('ompx shim: a shell program', () => {
  test('rank 2 moves onto n3 (-r 2 -t n3) and counts on from its saved count to the right sum', async () => {
    const N = 60
    const p = env.start(env.snapDir(), [OMPX, 'shim', '--', 'sh', CKPT_LOOP, String(N)])
    try {
      for (let r = 0; r < NP; r++) await p.waitFor(new RegExp(`^rank ${r} count 10$`), 30_000)
      const moved = await migrate(p, ['-r', '2', '-t', 'n3'])
      expect(moved.map(({ rank, from, to }) => ({ rank, from, to }))).toEqual([{ rank: 2, from: 'n2', to: 'n3' }])
      await expectWhereMoved(p, moved)
      const r = await p.done()
      expect(r.code).toBe(0)
      for (let rank = 0; rank < NP; rank++) expect(lines(r.stdout)).toContain(`rank ${rank} done ${(N * (N + 1)) / 2}`)
      // Continued, not restarted: from a count of at least 10, and no count printed twice.
      const at = lines(r.stdout).flatMap((l) => /^rank 2 restarted at (\d+)$/.exec(l)?.[1] ?? [])
      expect(at).toHaveLength(1)
      expect(Number(at[0])).toBeGreaterThanOrEqual(10)
      expect(lines(r.stdout).filter((l) => l.startsWith('rank 2 count '))).toEqual(Array.from({ length: N }, (_, i) => `rank 2 count ${i + 1}`))
      expect(lines(r.stdout).filter((l) => /^rank [013] restarted/.test(l))).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('crs self: two ranks at once (--ranks 1,3)', () => {
  test('onto the explicit spare (-t n3): both go there, the checksums equal an uninterrupted run', async () => {
    const p = env.start(env.snapDir(), migrateApp())
    try {
      await waitIters(p, NP, 20)
      const moved = await migrate(p, ['--ranks', '1,3', '-t', 'n3'])
      expect(moved.map(({ rank, from, to }) => ({ rank, from, to }))).toEqual([
        { rank: 1, from: 'n1', to: 'n3' },
        { rank: 3, from: 'n2', to: 'n3' },
      ])
      await expectWhereMoved(p, moved)
      const r = await expectRight(p.done(), want, true)
      for (const rank of [1, 3]) expectContinued(r.stdout, rank, SHAPE.iters)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('targets chosen by the HNP: both leave their nodes for the spare, the checksums equal an uninterrupted run', async () => {
    const p = env.start(env.snapDir(), migrateApp())
    try {
      await waitIters(p, NP, 20)
      const moved = await migrate(p, ['--ranks', '1,3'])
      // The spare has the most free slots (2), and after rank 1's move still ties n1 (1 free):
      // spares are preferred (docs/migration.md).
      expect(moved.map(({ rank, from, to }) => ({ rank, from, to }))).toEqual([
        { rank: 1, from: 'n1', to: 'n3' },
        { rank: 3, from: 'n2', to: 'n3' },
      ])
      await expectWhereMoved(p, moved)
      const r = await expectRight(p.done(), want, true)
      for (const rank of [1, 3]) expectContinued(r.stdout, rank, SHAPE.iters)
      for (const rank of [1, 3]) expect(lines(r.stdout).filter((l) => l.startsWith(`rank ${rank} moved to `))).toEqual([expect.stringMatching(/^rank \d moved to n3 at \d+$/)])
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('crs self: requestMigrate from inside the app', () => {
  test('rank 0 asks for rank 1 to leave its node: rank 1 ends on another node, rank 0 gets the outcome, the others are told who moved', async () => {
    const p = env.start(env.snapDir(), migrateApp('--ask-at', '30'))
    try {
      const r = await expectRight(p.done(), want, true)
      const out = lines(r.stdout)
      // Off n1 (its node and the requester's): the mapper picks the spare.
      expect(out.filter((l) => l.startsWith('rank 0 outcome'))).toEqual(['rank 0 outcome 1:n1->n3'])
      expect(out.filter((l) => l.startsWith('rank 1 moved to '))).toEqual([expect.stringMatching(/^rank 1 moved to n3 at [1-9]\d+$/)])
      for (const rank of [0, 2, 3]) expect(out.filter((l) => l.startsWith(`rank ${rank} continued`))).toEqual([`rank ${rank} continued moved 1`])
      expect(out.filter((l) => l.startsWith('rank 1 continued'))).toEqual([])
      for (let rank = 0; rank < NP; rank++) expectContinued(r.stdout, rank, SHAPE.iters)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('the tool', () => {
  test('-s prints "[ delta /  total] State" for Running, Checkpointing, Moving, Restarting, Finished', async () => {
    const p = env.start(env.snapDir(), migrateApp())
    try {
      await waitIters(p, NP, 20)
      const m = await env.run(['migrate', '-s', '-r', '2', String(p.pid)])
      expect([m.code, m.stderr]).toEqual([0, ''])
      const status = lines(m.stdout).flatMap((l) => {
        const hit = /^\[\s*(\d+\.\d\d) \/\s*(\d+\.\d\d)\]\s+(\w+)$/.exec(l)
        return hit ? [{ delta: Number(hit[1]), total: Number(hit[2]), state: hit[3]! }] : []
      })
      expect(status.map((s) => s.state)).toEqual(['Running', 'Checkpointing', 'Moving', 'Restarting', 'Finished'])
      // Totals grow; each delta is the step from the line before (rounded to 1/100 s each).
      for (let i = 1; i < status.length; i++) {
        expect(status[i]!.total).toBeGreaterThanOrEqual(status[i - 1]!.total)
        expect(Math.abs(status[i]!.delta - (status[i]!.total - status[i - 1]!.total))).toBeLessThanOrEqual(0.011)
      }
      expect(status.at(-1)!.total).toBeLessThan(60)
      // After the progress, the table of the move.
      expect(m.stdout).toMatch(/\bn2\b.*\bn3\b/)
      await expectRight(p.done(), want, true)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

const COUNTER = counterIn(env.tmp)

describe('crs criu --hold', () => {
  test('the others are stopped while rank 1 moves; every rank prints exactly the uninterrupted lines', async () => {
    const args = ['--mib', '64', '--ticks', '80', '--interval-ms', '40']
    const ref = referenceLines([COUNTER, ...args.slice(0, 4), '--interval-ms', '0'])
    const p = env.start(env.snapDir(), [COUNTER, ...args], { crs: 'criu', extra: ['--tag-output'] })
    try {
      await p.waitFor(/^\[[^\]]+,1\]<stdout>:tick 10 /, 30_000)
      const others = (await rankProcs(p.pid, env.opts())).filter((x) => x.rank !== 1)
      const tool = spawnOmpx(['migrate', '-s', '--hold', '-r', '1', '-t', 'n3', String(p.pid)], env.opts())
      // While the images travel (Moving) the ranks that stay are stopped (SIGSTOP).
      await tool.waitFor(/\bMoving$/, 60_000)
      const states = others.map((x) => procState(x.pid))
      const m = await tool.done()
      expect([m.code, m.stderr]).toEqual([0, ''])
      expect(states).toEqual(others.map(() => 'T'))
      // And they run again afterwards.
      await waitUntil(() => others.every((x) => procState(x.pid) !== 'T'), 10_000, 'the others running again')
      const r = await p.done()
      expect(r.code).toBe(0)
      const got = byRank(r.stdout)
      for (let rank = 0; rank < NP; rank++) expect([rank, got.get(rank)]).toEqual([rank, ref])
    } finally {
      p.signal('SIGKILL')
    }
  })
})
