/**
 * The global checkpoint coordinator (GlobalSnapc) through its ports, no process spawned: a fake
 * JobPort records what it broadcasts, the test plays the node daemons (orted.ckpt reports, staged
 * files through its receivers). Covers the successful paths: a consistent cut, when ranks are
 * released for a direct and a staging store, what global.json records, --term, --stop, retention,
 * and the reasons a checkpoint cannot start. Failures are in global-snapc-failures.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import type { Registry } from '../../src/plugins/registry'
import { readRankMeta } from '../../src/sstore/local-snapshot'
import { JOBID, REF, captureCentral, loadRegistry, newGlobal, prepAll, report, runCentral, settle, stageLocal, syncStaged } from './snapc-fakes'

const root = mkdtempSync(join(tmpdir(), 'ompx-gsnapc-'))
let reg: Registry
beforeAll(async () => {
  reg = (await loadRegistry(root)).registry
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const tool = { term: false, stop: false, origin: 'tool' as const }

describe('GlobalSnapc with a direct (central) store', () => {
  test('capture waits for every PREP OK (a stall delays it); release only once global.json lists the seq', async () => {
    const h = newGlobal(reg, root)
    h.services.request({ t: 'orted.app', jobid: JOBID, rank: 0, id: 2, op: 'put', key: 'k', value: new TextEncoder().encode('v') })
    const done = h.gs.request(tool, h.progress)
    expect(h.gs.inProgress).toBe(true)
    expect(h.port.ops()).toEqual(['prep'])
    const prep = h.port.sent[0]!
    expect(prep).toMatchObject({ jobid: JOBID, ranks: [0, 1], options: [] })
    expect(prep.store).toEqual({ sstore: 'central', globalDir: h.plan.globalDir, ref: REF, seq: 0, crs: 'self' })

    h.gs.report(report(0, 0, 'prep', 'ok'))
    h.gs.report(report(1, 0, 'prep', 'stall'))
    h.gs.report(report(0, 0, 'prep', 'ok'))
    expect(h.port.ops()).toEqual(['prep'])
    expect(h.states).toEqual(['Requested', 'Pending'])
    h.gs.report(report(1, 0, 'prep', 'ok'))
    expect(h.port.ops()).toEqual(['prep', 'capture'])
    expect(h.port.sent[1]!.store.seq).toBe(0)
    expect(h.states.at(-1)).toBe('Running')

    let listedAtRelease: number[] | undefined
    h.port.onBroadcast = (m) => {
      if (m.op === 'release') listedAtRelease = h.globalJson()?.seqs.map((s) => s.seq)
    }
    const metas = await captureCentral(h, 0)
    await settle()
    expect(h.port.ops()).toEqual(['prep', 'capture']) // direct: nobody is released before the commit
    h.gs.report(report(0, 0, 'synced', 'ok'))
    await settle()
    expect(h.globalJson()).toBeNull()
    h.gs.report(report(1, 0, 'synced', 'ok'))
    const res = await done

    const bytes = metas[0]!.bytes + metas[1]!.bytes
    expect(res).toMatchObject({ ref: REF, seq: 0, dir: join(h.plan.globalDir, REF), bytes })
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(listedAtRelease).toEqual([0])
    expect(h.states).toEqual(['Requested', 'Pending', 'Running', 'Checkpoint Established', 'Continuing', 'Finished'])
    expect(h.gs.inProgress).toBe(false)
    expect(h.gs.latest()?.seq).toBe(0)
    expect(h.port.ended).toBe(0)
    expect(h.port.signals).toEqual([])

    const meta = h.globalJson()!
    expect(meta).toMatchObject({ ref: REF, jobid: JOBID, apps: h.plan.base.apps, nodes: h.plan.base.nodes, params: { crs: 'self' } })
    expect(meta.seqs).toHaveLength(1)
    const s = meta.seqs[0]!
    expect(s).toMatchObject({ seq: 0, crs: 'self', sstore: 'central', options: [], bytes, kvFile: { path: 'kv.json' } })
    // The kv store is a file of its own, not inline in global.json.
    expect(s.kv).toBeUndefined()
    expect(JSON.parse(readFileSync(join(h.plan.globalDir, REF, '0', 'kv.json'), 'utf8'))).toEqual({ k: 'dg==' })
    expect(s.ranks).toEqual(metas)
    expect(s.procs).toEqual([{ rank: 0, app: 0, node: 'n1' }, { rank: 1, app: 0, node: 'n1' }])
    expect(readFileSync(join(h.rankDir(0, 1), 'img/mem.bin'), 'utf8')).toBe('state of rank 1 seq 0')
  })

  test('--stop signals SIGSTOP after the commit; options are recorded', async () => {
    const h = newGlobal(reg, root)
    let listedAtStop: number[] | undefined
    const signal = h.port.signal.bind(h.port)
    h.port.signal = (sig, ranks) => ((listedAtStop = h.globalJson()?.seqs.map((s) => s.seq)), signal(sig, ranks))
    await runCentral(h, { stop: true })
    expect(h.port.signals).toEqual([{ sig: 'SIGSTOP', ranks: undefined }])
    expect(listedAtStop).toEqual([0])
    expect(h.port.sent[0]!.options).toEqual(['stop'])
    expect(h.globalJson()!.seqs[0]!.options).toEqual(['stop'])
    expect(h.port.ops().at(-1)).toBe('release:continue')
  })

  test('retention: keep=2 leaves the two newest seqs, listed and on disk', async () => {
    const h = newGlobal(reg, root, { keep: 2 })
    for (const want of [0, 1, 2]) expect((await runCentral(h)).seq).toBe(want)
    expect(h.globalJson()!.seqs.map((s) => s.seq)).toEqual([1, 2])
    expect(existsSync(join(h.plan.globalDir, REF, '0'))).toBe(false)
    expect(readFileSync(join(h.rankDir(1, 0), 'img/mem.bin'), 'utf8')).toBe('state of rank 0 seq 1')
    expect(existsSync(h.rankDir(2, 1))).toBe(true)
  })
})

describe('GlobalSnapc with a staging store', () => {
  test('ranks are released once all are captured; the commit waits for every rank synced', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const done = h.gs.request(tool, h.progress)
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1)]
    h.gs.report(report(0, 0, 'captured', 'ok', { snapshot: local[0]!.meta }))
    expect(h.port.ops()).toEqual(['prep', 'capture'])
    h.gs.report(report(1, 0, 'captured', 'ok', { snapshot: local[1]!.meta }))
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(h.states).toEqual(['Requested', 'Pending', 'Running', 'Checkpoint Established', 'Continuing'])

    await syncStaged(h, 0, local[0]!)
    await settle()
    expect(h.globalJson()).toBeNull()
    expect(h.gs.inProgress).toBe(true)
    await syncStaged(h, 0, local[1]!)
    const res = await done
    expect(res.seq).toBe(0)
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:continue'])
    expect(h.states.at(-1)).toBe('Finished')
    const s = h.globalJson()!.seqs[0]!
    expect(s.sstore).toBe('stage')
    expect(s.ranks).toEqual(local.map((l) => l.meta))
    for (const { dir: localDir, meta } of local) {
      const dir = h.rankDir(0, meta.rank)
      expect(readFileSync(join(dir, 'a.bin'), 'utf8')).toBe(readFileSync(join(localDir, 'a.bin'), 'utf8'))
      expect(readFileSync(join(dir, 'sub/b.bin'), 'utf8')).toBe(`staged b ${meta.rank}`)
      // The HNP writes ompx-rank.json for rank dirs it received.
      expect(await readRankMeta(dir)).toEqual(meta)
    }
  })

  test('--term: nobody is released before the commit; then release term and the job ends once', async () => {
    const h = newGlobal(reg, root, { sstore: 'stage' })
    const done = h.gs.request({ ...tool, term: true })
    expect(h.port.sent[0]!.options).toEqual(['term'])
    prepAll(h, 0)
    const local = [await stageLocal(root, 0, 0), await stageLocal(root, 0, 1)]
    for (const { meta } of local) h.gs.report(report(meta.rank, 0, 'captured', 'ok', { snapshot: meta }))
    expect(h.port.ops()).toEqual(['prep', 'capture'])
    let atRelease: { listed?: number[]; ended: number } | undefined
    h.port.onBroadcast = (m) => {
      if (m.op === 'release') atRelease = { listed: h.globalJson()?.seqs.map((s) => s.seq), ended: h.port.ended }
    }
    for (const m of local) await syncStaged(h, 0, m)
    await done
    expect(h.port.ops()).toEqual(['prep', 'capture', 'release:term'])
    expect(atRelease).toEqual({ listed: [0], ended: 0 })
    expect(h.port.ended).toBe(1)
    expect(h.globalJson()!.seqs[0]!.options).toEqual(['term'])
    // After a --term release the ranks exit: that is no failure any more.
    h.gs.rankGone(0)
    expect(h.gs.latest()?.seq).toBe(0)
  })
})

describe('GlobalSnapc: when a checkpoint cannot start', () => {
  test("crs none: not checkpointable, request throws that reason and reserves nothing", () => {
    const h = newGlobal(reg, root, { crs: 'none' })
    expect(h.gs.whyNot()).toStartWith("job 1.1 is not checkpointable: crs 'none' is selected")
    expect(() => h.gs.request(tool)).toThrow(ActionableError)
    expect(() => h.gs.request(tool)).toThrow(h.gs.whyNot()!)
    expect(h.port.sent).toEqual([])
    expect(existsSync(join(h.plan.globalDir, REF))).toBe(false)
  })

  test('crs self: every rank must have passed INIT; a finalized rank or an ending job refuses', () => {
    const h = newGlobal(reg, root, { inited: [], ranks: [0, 1, 2] })
    expect(h.gs.whyNot()).toBe('job 1.1 is not checkpointable yet: ranks 0,1,2 have not reached the INIT barrier (ompx/app init() or ompx shim)')
    h.services.request({ t: 'orted.app', jobid: JOBID, rank: 0, id: 1, op: 'init' })
    h.services.request({ t: 'orted.app', jobid: JOBID, rank: 2, id: 1, op: 'init' })
    expect(h.gs.whyNot()).toBe('job 1.1 is not checkpointable yet: rank 1 has not reached the INIT barrier (ompx/app init() or ompx shim)')
    expect(() => h.gs.request(tool)).toThrow('rank 1 has not reached the INIT barrier')
    h.services.request({ t: 'orted.app', jobid: JOBID, rank: 1, id: 1, op: 'init' })
    expect(h.gs.whyNot()).toBeNull()
    h.port.isEnding = true
    expect(h.gs.whyNot()).toBe('job 1.1 is ending; no checkpoint taken')
    h.port.isEnding = false
    h.services.rankGone(2)
    expect(h.gs.whyNot()).toBe('job 1.1 is not checkpointable: rank 2 has finalized or exited')
  })

  test('a second request during a round: "checkpoint in progress"; a follower gets the states', async () => {
    const h = newGlobal(reg, root)
    const done = h.gs.request(tool)
    expect(() => h.gs.request(tool)).toThrow('checkpoint in progress for job 1.1 (seq 0); try again when it has finished')
    expect(h.port.ops()).toEqual(['prep'])
    expect(h.gs.follow(h.progress)).toBe(true)
    prepAll(h, 0)
    await captureCentral(h, 0)
    for (const r of [0, 1]) h.gs.report(report(r, 0, 'synced', 'ok'))
    await done
    expect(h.states).toEqual(['Running', 'Checkpoint Established', 'Continuing', 'Finished'])
    expect(h.gs.follow(h.progress)).toBe(false)
    expect((await runCentral(h)).seq).toBe(1)
  })
})
