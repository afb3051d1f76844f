/**
 * Races of the global checkpoint coordinator (GlobalSnapc), through its fake ports: every async
 * continuation acts on its own round only (a stale failure never touches the next one), capture
 * is broadcast once per round, commit and abort exclude each other (a failure during the commit
 * neither empties a seq that gets listed nor crashes; a failed commit lists nothing), a lost node
 * fails a round that still needs its images at once, and a stage-store rank with an empty image
 * is committed. Issue #11.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Registry } from '../../src/plugins/registry'
import { REF, captureCentral, loadRegistry, newGlobal, prepAll, report, settle, stageLocal, syncStaged, writeAndSeal } from './snapc-fakes'

const root = mkdtempSync(join(tmpdir(), 'ompx-gsnapc-race-'))
let reg: Registry
beforeAll(async () => {
  reg = (await loadRegistry(root)).registry
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const tool = { term: false, stop: false, origin: 'tool' as const }

describe('GlobalSnapc: one round never acts on another', () => {
  // Was a bug: synced() awaited rx.finish() and, when it rejects, calls this.fail(), which acts on
  // this.round, whatever round that is by then. fail() aborts the receivers of the round it
  // fails, so a rank whose synced report was being verified makes the *next* round fail.
  test('a round abandoned while a transfer is verified does not fail the next round', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const first = h.gs.request(tool)
    prepAll(h, 0)
    const l0 = await stageLocal(root, 0, 0)
    h.gs.report(report(0, 0, 'captured', 'ok', { snapshot: l0.meta }))
    await syncStaged(h, 0, l0) // synced() now awaits the receiver's finish()
    h.gs.rankGone(1)
    const second = h.gs.request(tool)
    await expect(first).rejects.toThrow('rank 1 exited')
    await settle()
    expect(h.port.ops()).toEqual(['prep', 'capture', 'abort:rank 1 exited during the checkpoint', 'prep'])
    expect(h.gs.inProgress).toBe(true)
    h.gs.rankGone(0)
    await second.catch(() => {})
  })

  // Was a bug: with a staging store the HNP creates rank_<r> only when files arrive. A rank whose
  // image has no file (crs self, the app keeps its state in the kv store) never gets a dir, and
  // GlobalSnapshot.commit() then fails writing its ompx-rank.json (ENOENT).
  test('stage store: a rank with an empty image is committed', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage', ranks: [0] })
    const done = h.gs.request(tool)
    prepAll(h, 0)
    const meta = await writeAndSeal(join(root, 'empty-image'), 0, {})
    expect(meta.files).toEqual([])
    h.gs.report(report(0, 0, 'captured', 'ok', { snapshot: meta }))
    h.gs.report(report(0, 0, 'synced', 'ok'))
    expect((await done).seq).toBe(0)
  })

  // Was a bug: report() sent 'capture' whenever a PREP OK arrives and all ranks are prepped, so one
  // extra PREP OK line from an app (the protocol lets it send several) starts a second capture.
  test('a repeated PREP OK does not broadcast capture twice', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool)
    prepAll(h, 0)
    h.gs.report(report(0, 0, 'prep', 'ok'))
    const ops = h.port.ops()
    h.gs.rankGone(0)
    await done.catch(() => {})
    expect(ops).toEqual(['prep', 'capture'])
  })
})

describe('GlobalSnapc: commit and abort exclude each other', () => {
  test('a rank exiting while global.json is written: the seq is listed whole, released, never emptied', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool, h.progress)
    prepAll(h, 0)
    await captureCentral(h, 0)
    h.gs.report(report(0, 0, 'synced', 'ok'))
    h.gs.report(report(1, 0, 'synced', 'ok')) // the commit is now in flight
    h.gs.rankGone(1)
    expect(h.gs.inProgress).toBe(true)
    expect((await done).seq).toBe(0)
    expect(h.globalJson()!.seqs.map((s) => s.seq)).toEqual([0])
    for (const r of [0, 1]) expect(readFileSync(join(h.rankDir(0, r), 'img/mem.bin'), 'utf8')).toBe(`state of rank ${r} seq 0`)
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(h.states.at(-1)).toBe('Finished')
    expect(h.gs.inProgress).toBe(false)
  })

  test('a failing commit lists nothing and names both reasons; the seq dir is emptied', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool)
    prepAll(h, 0)
    await captureCentral(h, 0)
    h.gs.report(report(0, 0, 'synced', 'ok'))
    rmSync(join(h.plan.globalDir, REF, '0'), { recursive: true })
    h.gs.report(report(1, 0, 'synced', 'ok'))
    h.gs.rankGone(0)
    await expect(done).rejects.toThrow(/failed: committing .* does not exist \(after: rank 0 exited during the checkpoint\); no snapshot was taken/)
    expect(h.globalJson()).toBeNull()
    expect(h.port.ops()).toEqual(['prep', 'capture', 'abort:' + h.port.sent.at(-1)!.text])
  })
})

describe('GlobalSnapc: a lost node', () => {
  test('stage store: a node lost after the release, before its ranks synced, fails the round at once', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage', ranks: [0, 1, 2] })
    const done = h.gs.request(tool)
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1), await stageLocal(root, 0, 2)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 0, 'captured', 'ok', { snapshot: meta }))
    await syncStaged(h, 0, local[0]!)
    // The released ranks have exited since: rankGone no longer matters, the node's loss does.
    for (const r of [0, 1, 2]) h.gs.rankGone(r)
    expect(h.gs.inProgress).toBe(true)
    h.gs.nodeLost('n2', [1, 2])
    await expect(done).rejects.toThrow('failed: node n2 was lost before ranks 1,2 reached the global store; no snapshot was taken')
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(h.globalJson()).toBeNull()
  })

  test('a node whose ranks are all in the global store does not fail the round', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const done = h.gs.request(tool)
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 0, 'captured', 'ok', { snapshot: meta }))
    await syncStaged(h, 0, local[0]!)
    h.gs.nodeLost('n1', [0])
    h.gs.nodeLost('n9', [7])
    await syncStaged(h, 0, local[1]!)
    expect((await done).seq).toBe(0)
  })
})
