/**
 * How the global checkpoint coordinator (GlobalSnapc) abandons a checkpoint, through its ports
 * with fakes (see global-snapc.test.ts for the successful paths): a NULL/ERROR report, a rank
 * exiting, a timeout or a damaged transfer fail it with an abort broadcast (unless the ranks were
 * already released), nothing is listed, the seq dir is emptied but kept, an older snapshot stays
 * intact and is named, and late reports of the abandoned seq never touch the next one.
 * The `test.failing` cases reproduce bugs found while writing this file (see their comments).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Registry } from '../../src/plugins/registry'
import { REF, captureCentral, loadRegistry, newGlobal, prepAll, report, runCentral, stageLocal, syncStaged, writeAndSeal } from './snapc-fakes'

const root = mkdtempSync(join(tmpdir(), 'ompx-gsnapc-fail-'))
let reg: Registry
beforeAll(async () => {
  reg = (await loadRegistry(root)).registry
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const tool = { term: false, stop: false, origin: 'tool' as const }
const failed = (why: string, last = '') => `checkpoint of job 1.1 failed: ${why}; no snapshot was taken${last}`

describe('GlobalSnapc: a failing checkpoint', () => {
  test('a NULL prep answer aborts with its reason; nothing listed, the seq dir kept empty', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool, h.progress)
    h.gs.report(report(0, 0, 'prep', 'ok'))
    h.gs.report(report(1, 0, 'prep', 'null', { message: 'rank 1 has no onCheckpoint callback' }))
    await expect(done).rejects.toThrow(failed('not checkpointable: rank 1 has no onCheckpoint callback'))
    expect(h.port.ops()).toEqual(['prep', 'abort:not checkpointable: rank 1 has no onCheckpoint callback'])
    expect(h.port.sent[1]!.store.seq).toBe(0)
    expect(h.states).toEqual(['Requested', 'Pending', 'Error'])
    expect(h.gs.inProgress).toBe(false)
    expect(h.globalJson()).toBeNull()
    expect(readdirSync(join(h.plan.globalDir, REF, '0'))).toEqual([])
  })

  test('a NULL answer without a message names the rank', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool)
    h.gs.report(report(1, 0, 'prep', 'null'))
    await expect(done).rejects.toThrow(failed('not checkpointable: rank 1 answered NULL'))
  })

  test('a capture error after a good seq: debris removed, seq 0 intact and named, its number never reused', async () => {
    const h = newGlobal(reg, root)
    await runCentral(h)
    const done = h.gs.request(tool)
    prepAll(h, 1)
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue', 'prep', 'capture'])
    const m0 = await writeAndSeal(h.rankDir(1, 0), 0, { 'img/mem.bin': 'half' })
    h.gs.report(report(0, 1, 'captured', 'ok', { snapshot: m0 }))
    h.gs.report(report(1, 1, 'captured', 'error', { message: 'rank 1 on n1: disk full' }))
    await expect(done).rejects.toThrow(failed('rank 1 on n1: disk full', ` (the last good one, seq 0 of ${REF}, is intact)`))
    expect(h.port.ops().at(-1)).toBe('abort:rank 1 on n1: disk full')
    expect(readdirSync(join(h.plan.globalDir, REF, '1'))).toEqual([])
    expect(h.globalJson()!.seqs.map((s) => s.seq)).toEqual([0])
    expect(readFileSync(join(h.rankDir(0, 0), 'img/mem.bin'), 'utf8')).toBe('state of rank 0 seq 0')
    expect(await h.gs.latest()?.seq).toBe(0)
    // The next checkpoint takes seq 2 (1 stays reserved) and, once committed, removes dir 1.
    expect((await runCentral(h)).seq).toBe(2)
    expect(h.globalJson()!.seqs.map((s) => s.seq)).toEqual([0, 2])
    expect(existsSync(join(h.plan.globalDir, REF, '1'))).toBe(false)
  })

  test('a rank exiting during the round fails it; a rank not in the round does not', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool)
    h.gs.report(report(0, 0, 'prep', 'ok'))
    h.gs.rankGone(7)
    expect(h.gs.inProgress).toBe(true)
    h.gs.rankGone(1)
    await expect(done).rejects.toThrow(failed('rank 1 exited during the checkpoint'))
    expect(h.port.ops()).toEqual(['prep', 'abort:rank 1 exited during the checkpoint'])
  })

  test('stage store: a captured rank exiting after the release does not fail the checkpoint', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const done = h.gs.request(tool)
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 0, 'captured', 'ok', { snapshot: meta }))
    h.gs.rankGone(0)
    for (const l of local) await syncStaged(h, 0, l)
    expect((await done).seq).toBe(0)
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
  })

  test('no answer within plan.timeoutSec fails it with the parameter named', async () => {
    const h = newGlobal(reg, root, { timeoutSec: 0.05 })
    const done = h.gs.request(tool, h.progress)
    h.gs.report(report(0, 0, 'prep', 'ok'))
    await expect(done).rejects.toThrow(failed('not finished within 0.05 s (snapc_base_timeout)'))
    expect(h.port.ops()).toEqual(['prep', 'abort:not finished within 0.05 s (snapc_base_timeout)'])
    expect(h.states.at(-1)).toBe('Error')
  })

  test('stage store: a damaged transfer fails it after the release, without an abort', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const done = h.gs.request(tool)
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 0, 'captured', 'ok', { snapshot: meta }))
    await syncStaged(h, 0, local[0]!)
    const rx = h.gs.receiver({ ref: REF, seq: 0, rank: 1 })!
    for (const f of local[1]!.meta.files) {
      await rx.write({ path: f.path, offset: 0, data: new Uint8Array(f.size).fill(120), codec: 'raw', last: true })
    }
    h.gs.report(report(1, 0, 'synced', 'ok'))
    await expect(done).rejects.toThrow("rank 1's snapshot arrived damaged")
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(h.globalJson()).toBeNull()
    expect(readdirSync(join(h.plan.globalDir, REF, '0'))).toEqual([])
  })

  test('files before the capture report fail it; other seqs or refs get no receiver', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    expect(h.gs.receiver({ ref: REF, seq: 0, rank: 0 })).toBeNull()
    const done = h.gs.request(tool)
    prepAll(h, 0)
    expect(h.gs.receiver({ ref: REF, seq: 1, rank: 0 })).toBeNull()
    expect(h.gs.receiver({ ref: 'ompx_global_snapshot_2.1.ckpt', seq: 0, rank: 0 })).toBeNull()
    expect(h.gs.inProgress).toBe(true)
    expect(h.gs.receiver({ ref: REF, seq: 0, rank: 0 })).toBeNull()
    await expect(done).rejects.toThrow(failed('rank 0 sent snapshot data before reporting its capture'))
    expect(h.port.ops().at(-1)).toBe('abort:rank 0 sent snapshot data before reporting its capture')
  })
})

describe('GlobalSnapc: late reports of an abandoned seq', () => {
  test('are ignored by the next checkpoint, which then commits normally', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const first = h.gs.request(tool)
    h.gs.rankGone(0)
    await expect(first).rejects.toThrow('rank 0 exited')
    const second = h.gs.request(tool)
    expect(h.port.sent.at(-1)!.store.seq).toBe(1)
    prepAll(h, 0)
    h.gs.report(report(0, 0, 'captured', 'error', { message: 'late' }))
    expect(h.gs.receiver({ ref: REF, seq: 0, rank: 0 })).toBeNull()
    expect(h.port.ops()).toEqual(['prep', 'abort:rank 0 exited during the checkpoint', 'prep'])
    expect(h.gs.inProgress).toBe(true)
    prepAll(h, 1)
    const local = [await stageLocal(root, 1, 0), await stageLocal(root, 1, 1)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 1, 'captured', 'ok', { snapshot: meta }))
    for (const l of local) await syncStaged(h, 1, l)
    expect((await second).seq).toBe(1)
    expect(h.globalJson()!.seqs.map((s) => s.seq)).toEqual([1])
  })
})
