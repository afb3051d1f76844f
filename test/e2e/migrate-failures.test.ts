/**
 * `ompx migrate` when things go wrong (issue #12, "Nothing lost"), on simulated nodes n1:2, n2:2
 * running ranks 0-3 and a spare n3:2, crs self. A mover whose capture fails: the round is
 * aborted, every rank goes on where it was. A restore that fails on the target, or the target's
 * daemon killed mid-move: the mover runs on its source again and the job ends right. The source's
 * daemon killed mid-move: an ordinary node failure. A rank that dies during the round: the round
 * is abandoned, the job ends as it would. Two requests at once: "migration in progress" (and
 * "checkpoint in progress" the other way round). The tool fails with one line each time, and no
 * process is left on any node (guardLeftovers, and checked before the test ends where it matters).
 * Movers are held inside their capture with ckpt-hold.ts (hold.<rank> in its hold directory).
 */
import { describe, expect, test } from 'bun:test'
import { unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { currentMark, FIXTURES, leftovers, lines, spawnOmpx, type OmpxProcess } from '../helpers'
import { BUN, daemonOf, expectRight, expectUserError, HOLD, holdArgv, kill, rankProcs, reference, waitIters, type AppShape, type PsProc } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const env = ckptTestEnv('migrate-failures', { timeoutMs: 90_000, testTimeoutMs: 150_000, hosts: 'n1:2,n2:2,n3:2', np: NP })
const SHAPE: AppShape = { iters: 200, size: 4, sleepMs: 20 }
const MIGRATE_APP = join(FIXTURES, 'migrate-app.ts')
const migrateApp = (...extra: string[]) => [BUN, MIGRATE_APP, '--iters', String(SHAPE.iters), '--mb', String(SHAPE.size), '--sleep-ms', String(SHAPE.sleepMs), ...extra]

const where = (ps: PsProc[]) => ps.map((x) => [x.rank, x.node])

/** A ckpt-hold job and its hold directory. */
function heldJob(): { hold: string; p: OmpxProcess } {
  const hold = env.mkdir('hold-')
  return { hold, p: env.start(env.snapDir(), holdArgv(HOLD), { env: { CKPT_HOLD_DIR: hold } }) }
}

/** `ompx migrate [args]` of job `p`, started once `rank` (a mover) holds inside its capture. */
async function heldMigrate(p: OmpxProcess, hold: string, rank: number, args: string[]): Promise<OmpxProcess> {
  writeFileSync(join(hold, `hold.${rank}`), '')
  const tool = spawnOmpx(['migrate', ...args, String(p.pid)], env.opts())
  await p.waitFor(new RegExp(`^rank ${rank} holding$`), 30_000)
  return tool
}

describe('the round fails before anything moved', () => {
  test('a capture error on the mover: one line saying why, every rank goes on where it was, the job ends right', async () => {
    const p = env.start(env.snapDir(), migrateApp('--fail-capture', '1'))
    try {
      await waitIters(p, NP, 20)
      const before = await rankProcs(p.pid, env.opts())
      const m = await env.run(['migrate', '-r', '1', '-t', 'n3', String(p.pid)])
      expectUserError(m, /migration of job \S+ failed: .*rank 1 refuses to be captured.*every rank goes on where it was/)
      const after = await rankProcs(p.pid, env.opts())
      expect(after.map((x) => [x.rank, x.node, x.pid])).toEqual(before.map((x) => [x.rank, x.node, x.pid]))
      const r = await expectRight(p.done(), reference('app', SHAPE, NP))
      expect(lines(r.stdout).filter((l) => / moved to /.test(l))).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('a rank killed during the round: the round is abandoned, the job ends as that failure makes it', async () => {
    const { hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const tool = await heldMigrate(p, hold, 1, ['-r', '1', '-t', 'n3'])
      kill((await rankProcs(p.pid, env.opts())).find((x) => x.rank === 3)!.pid, 'SIGKILL')
      const m = await tool.done()
      unlinkSync(join(hold, 'hold.1'))
      expectUserError(m, /migration of job \S+ failed: .*rank 3\b/)
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/rank 3\b.*SIGKILL/)
      expect(await leftovers(currentMark(), 5000)).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('the target cannot take the mover: it runs on its source again', () => {
  test('the restore fails on the target: the tool says the rank was restored on its source, the job ends right', async () => {
    const p = env.start(env.snapDir(), migrateApp('--refuse-node', 'n3'))
    try {
      await waitIters(p, NP, 20)
      const before = await rankProcs(p.pid, env.opts())
      const m = await env.run(['migrate', '-r', '1', '-t', 'n3', String(p.pid)])
      expectUserError(m, /rank 1 could not start on its target and was restored on n1 \(n3: .+\)/)
      const after = await rankProcs(p.pid, env.opts())
      expect(where(after)).toEqual(where(before))
      expect(after.find((x) => x.rank === 1)!.pid).not.toBe(before.find((x) => x.rank === 1)!.pid)
      const r = await expectRight(p.done(), reference('app', SHAPE, NP))
      expect(lines(r.stdout).filter((l) => l.startsWith('rank 1 moved to '))).toEqual([expect.stringMatching(/^rank 1 moved to n1 at \d+$/)])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('kill -9 of the target daemon during the move: the tool fails, the mover runs on its source, the job ends right', async () => {
    const { hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const before = await rankProcs(p.pid, env.opts())
      const tool = await heldMigrate(p, hold, 1, ['-r', '1', '-t', 'n3'])
      kill(daemonOf('n3'), 'SIGKILL')
      unlinkSync(join(hold, 'hold.1'))
      const m = await tool.done()
      expectUserError(m, /rank 1 could not start on its target and was restored on n1 \(n3: .+\)/)
      expect(where(await rankProcs(p.pid, env.opts()))).toEqual(where(before))
      await expectRight(p.done(), reference('hold', HOLD))
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('the source node dies mid-move', () => {
  test('kill -9 of the source daemon: an ordinary node failure (the job aborts naming the node), nothing left', async () => {
    const { hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const tool = await heldMigrate(p, hold, 2, ['-r', '2', '-t', 'n3'])
      kill(daemonOf('n2'), 'SIGKILL')
      const m = await tool.done()
      unlinkSync(join(hold, 'hold.2'))
      expectUserError(m, /n2/)
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/node n2 lost/)
      expect(await leftovers(currentMark(), 5000)).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('one round at a time', () => {
  test('a second ompx migrate and an ompx checkpoint during a migration: "migration in progress"; the first move succeeds', async () => {
    const { hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const first = await heldMigrate(p, hold, 1, ['--json', '-r', '1', '-t', 'n3'])
      expectUserError(await env.run(['migrate', '-r', '2', String(p.pid)]), /migration in progress/)
      expectUserError(await env.run(['checkpoint', String(p.pid)]), /migration in progress/)
      unlinkSync(join(hold, 'hold.1'))
      const m = await first.done()
      expect([m.code, m.stderr]).toEqual([0, ''])
      expect((JSON.parse(m.stdout) as { ranks: { rank: number; to: string }[] }).ranks.map(({ rank, to }) => ({ rank, to }))).toEqual([{ rank: 1, to: 'n3' }])
      expect((await rankProcs(p.pid, env.opts())).find((x) => x.rank === 1)!.node).toBe('n3')
      await expectRight(p.done(), reference('hold', HOLD))
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('ompx migrate during a checkpoint: "checkpoint in progress"; the checkpoint succeeds', async () => {
    const { hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const ckpt = await env.heldCheckpoint(p, hold, 1)
      expectUserError(await env.run(['migrate', '-r', '1', String(p.pid)]), /checkpoint in progress/)
      unlinkSync(join(hold, 'hold.1'))
      expect((await ckpt.done()).code).toBe(0)
      await expectRight(p.done(), reference('hold', HOLD))
    } finally {
      p.signal('SIGKILL')
    }
  })
})
