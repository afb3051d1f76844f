/**
 * The HNP's side of `ompx migrate` with a fake channel and coordinator: refusals (no such job, not
 * checkpointable, busy, bad plan), the plan handed to the coordinator, status and notices only
 * when asked, the done message, a result that missed a target; and how the tool prints.
 */
import { describe, expect, test } from 'bun:test'
import type { JobCoordinator } from '../../src/hnp/snapc/job-coordinator'
import { missedTargets, serveMigrateTools } from '../../src/hnp/snapc/migrate-service'
import type { MigrationProgress, MigrationRequest, MigrationResult, MigrationView } from '../../src/hnp/snapc/migrate-types'
import type { Channel } from '../../src/wire/channel'
import type { Message, MessageOf } from '../../src/wire/messages'
import { migrateJson, migrateStatusLine, migrateSummary, migrateTiming, requestListing } from '../../src/tools/migrate-output'

const VIEW: MigrationView = {
  crs: 'self',
  notCheckpointable: null,
  busy: null,
  procs: ['n1', 'n1', 'n2', 'n2'].map((node, rank) => ({ rank, node })),
  nodes: ['n1', 'n2', 'n3'].map((name) => ({ name, slots: 2 })),
}

function fakeCoordinator(view: Partial<MigrationView>, answer: (req: MigrationRequest, progress?: MigrationProgress) => Promise<MigrationResult>) {
  const asked: MigrationRequest[] = []
  const coord = {
    migrationView: () => ({ ...VIEW, ...view }),
    migrate: (req: MigrationRequest, progress?: MigrationProgress) => {
      asked.push(req)
      return answer(req, progress)
    },
  }
  return { coord: coord as unknown as JobCoordinator, asked }
}

/** Send one tool.migrate through the service; everything it answered once settled. */
async function ask(coord: JobCoordinator, m: Partial<MessageOf<'tool.migrate'>>): Promise<Message[]> {
  const sent: Message[] = []
  let handler: ((m: MessageOf<'tool.migrate'>) => void) | undefined
  const ch = { on: (_t: string, h: typeof handler) => (handler = h), send: (x: Message) => sent.push(x) > 0 }
  serveMigrateTools(new Map([['7.1', coord]]))(ch as unknown as Channel)
  handler!({ t: 'tool.migrate', ranks: [], off: [], onto: [], hold: false, keepImages: false, status: false, verbose: false, ...m })
  await Bun.sleep(5)
  return sent
}

const moved = (rank: number, from: string, to: string) => ({ rank, from, to, oldPid: 100 + rank, newPid: 200 + rank, bytes: 1024, downtimeMs: 250 })
const ok = (req: MigrationRequest, progress?: MigrationProgress) => {
  progress?.('Checkpointing', 10)
  progress?.('Finished', 300)
  return Promise.resolve({ moves: req.moves.map((m) => moved(m.rank, 'n1', m.to)), bytes: 1024 * req.moves.length, totalMs: 300, timing: { capture: 100, transfer: 50 } })
}

describe('migrate service', () => {
  test('refusals: unknown job, not checkpointable (with the CRS advice once), busy, a bad plan', async () => {
    const { coord, asked } = fakeCoordinator({}, ok)
    expect(await ask(coord, { jobid: '9.9', ranks: [1] })).toEqual([{ t: 'error', message: 'no job 9.9 here (running: 7.1)' }])
    const none = fakeCoordinator({ crs: 'none', notCheckpointable: "crs 'none' is selected (start it with --mca crs self or --mca crs criu)" }, ok).coord
    expect(await ask(none, { ranks: [1] })).toEqual([{ t: 'error', message: "job 7.1 cannot migrate: crs 'none' is selected (start it with --mca crs self or --mca crs criu)" }])
    const criu = fakeCoordinator({ crs: 'criu', notCheckpointable: 'criu is not installed' }, ok).coord
    expect(await ask(criu, { ranks: [1] })).toEqual([{ t: 'error', message: 'job 7.1 cannot migrate: criu is not installed (start it with --mca crs self or --mca crs criu)' }])
    const busy = fakeCoordinator({ busy: 'migration in progress for job 7.1' }, ok).coord
    expect(await ask(busy, { ranks: [1] })).toEqual([{ t: 'error', message: 'migration in progress for job 7.1' }])
    expect(await ask(coord, { ranks: [9] })).toEqual([{ t: 'error', message: 'rank 9 is out of range: the job has ranks 0-3' }])
    expect(asked).toEqual([])
  })

  test('the plan goes to the coordinator; status and plan notices only when asked; done', async () => {
    const { coord, asked } = fakeCoordinator({}, ok)
    const quiet = await ask(coord, { ranks: [0], hold: true, keepImages: true })
    expect(asked).toEqual([{ moves: [{ rank: 0, to: 'n3' }], hold: true, keepImages: true, origin: 'tool' }])
    expect(quiet).toEqual([{ t: 'hnp.migrate-done', jobid: '7.1', moves: [moved(0, 'n1', 'n3')], bytes: 1024, totalMs: 300, timing: { capture: 100, transfer: 50 } }])
    const loud = await ask(coord, { off: ['n2'], verbose: true })
    expect(loud.map((m) => m.t)).toEqual(['hnp.notice', 'hnp.notice', 'hnp.migrate-status', 'hnp.migrate-status', 'hnp.migrate-done'])
    expect(loud[0]).toEqual({ t: 'hnp.notice', jobid: '7.1', text: 'rank 2: n2 -> n3' })
    expect(loud[2]).toEqual({ t: 'hnp.migrate-status', jobid: '7.1', state: 'Checkpointing', elapsed: 10 })
  })

  test('an engine error, or a rank that did not reach its target, is an error', async () => {
    const failing = fakeCoordinator({}, () => Promise.reject(new Error('restore failed on n3; rank 0 rolled back to n1'))).coord
    expect(await ask(failing, { ranks: [0] })).toEqual([{ t: 'error', message: 'restore failed on n3; rank 0 rolled back to n1' }])
    const r = { moves: [moved(0, 'n1', 'n2')], bytes: 0, totalMs: 1, timing: {} }
    expect(missedTargets([{ rank: 0, to: 'n3' }], r)).toBe('rank 0 runs on n2, not on its target n3')
    expect(missedTargets([{ rank: 1, to: 'n3' }], r)).toBe('rank 1 was not moved to n3')
    expect(missedTargets([{ rank: 0, to: 'n2' }], r)).toBeNull()
  })
})

describe('migrate output', () => {
  const done: MessageOf<'hnp.migrate-done'> = { t: 'hnp.migrate-done', jobid: '7.1', moves: [moved(2, 'n2', 'n3')], bytes: 3 * 1024 * 1024, totalMs: 1234, timing: { capture: 400, transfer: 300, total: 1234 } }

  test('status lines as orte-migrate prints them, the request listing', () => {
    expect(migrateStatusLine(420, 1370, 'Moving')).toBe(`[  0.42 /   1.37] ${' '.repeat(19)}Moving`)
    expect(requestListing({ ranks: [2, 5], off: [], onto: ['n3'] })).toBe('Migrate Nodes: (0 nodes)\nMigrate Ranks: (2 ranks)\n\t"2"\n\t"5"\nMigrate Onto : (1 nodes)\n\t"n3"')
  })

  test('table, JSON, timing', () => {
    const text = migrateSummary(done)
    expect(text).toMatch(/^RANK\s+FROM\s+TO\s+OLD PID\s+NEW PID\s+SIZE\s+DOWNTIME\n2\s+n2\s+n3\s+102\s+202\s+1.0 KiB\s+0.250 s\n/)
    expect(text).toMatch(/Migrated 1 rank of job 7\.1 in 1\.234 s \(3\.0 MiB moved\)$/)
    expect(migrateJson(done)).toEqual({
      jobid: '7.1',
      ranks: [{ rank: 2, from: 'n2', to: 'n3', oldPid: 102, newPid: 202, bytes: 1024, downtimeMs: 250 }],
      totals: { ranks: 1, bytes: 3 * 1024 * 1024, totalMs: 1234, maxDowntimeMs: 250 },
      timing: { capture: 400, transfer: 300, total: 1234 },
    })
    expect(migrateTiming(done).split('\n').map((l) => l.split(/\s{2,}/)[0])).toEqual(['PHASE', 'capture', 'transfer', 'total', 'size'])
  })
})
