/**
 * The local checkpoint coordinator (LocalSnapc) and the ranks' side of it: what a rank is told to
 * reach its daemon (socket, per-rank token, restart dir, a staged image complete before launch),
 * and a whole checkpoint with crs self through the real app-coordinator socket, the test playing
 * both the HNP (hnp.ckpt / hnp.app) and the app (raw protocol lines, docs/app-protocol.md).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Params } from '../../src/params/params'
import type { Registry } from '../../src/plugins/registry'
import { readRankMeta } from '../../src/sstore/local-snapshot'
import { crc32, newLocal, rawApp, type LocalHarness } from './local-snapc-fakes'
import { JOBID, REF, loadRegistry, settle, until } from './snapc-fakes'

const root = mkdtempSync(join(tmpdir(), 'ompx-lsnapc-app-'))
let reg: { registry: Registry; params: Params }
const open: LocalHarness[] = []
const apps: { end(): void }[] = []
beforeAll(async () => {
  reg = await loadRegistry(root)
})
afterEach(() => {
  for (const a of apps.splice(0)) a.end()
  for (const h of open.splice(0)) h.ls.close()
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function started(): Promise<LocalHarness> {
  const h = newLocal(reg, root, { 0: process.pid, 1: process.pid })
  open.push(h)
  await h.ls.start()
  return h
}

/** A rank connected with HELLO; returns it and the daemon's first line. */
async function hello(h: LocalHarness, rank: number, token: string) {
  const app = await rawApp(h.ls.socketPath)
  apps.push(app)
  app.send(`HELLO 1 ${rank} ${token} ${process.pid}`)
  return { app, welcome: await app.next() }
}

describe('rankLink', () => {
  test('socket path and a fresh token per rank; an old token is refused', async () => {
    const h = await started()
    const l0 = await h.ls.rankLink(0)
    const l1 = await h.ls.rankLink(1)
    expect(l0.socket).toBe(join(h.ctx.sessionDir, 'coord.sock'))
    expect(existsSync(l0.socket)).toBe(true)
    expect(l0.token).toMatch(/^[0-9a-f]{32}$/)
    expect(l1.token).not.toBe(l0.token)
    expect(l0.restartDir).toBeUndefined()
    const again = await h.ls.rankLink(0)
    expect(again.token).not.toBe(l0.token)
    expect((await hello(h, 0, l0.token)).welcome).toBe('DENIED bad token')
    expect((await hello(h, 0, again.token)).welcome).toBe('WELCOME START')
    await until(() => h.reports.some((m) => m.t === 'orted.app-link'), 'the link report')
    expect(h.reports).toEqual([{ t: 'orted.app-link', jobid: JOBID, rank: 0, up: true }])
  })

  test('a restart in place: the rank is told its image dir (link and WELCOME RESTART)', async () => {
    const h = await started()
    const dir = join(h.ctx.nodeDir, 'snaps', 'my ref', '3', 'rank_1')
    mkdirSync(dir, { recursive: true })
    const link = await h.ls.rankLink(1, { dir, staged: false })
    expect(link.restartDir).toBe(dir)
    expect((await hello(h, 1, link.token)).welcome).toBe(`WELCOME RESTART ${dir}`)
  })

  test('an image read in place that is no longer a real directory (a symlink, gone) is refused', async () => {
    const h = await started()
    const real = join(h.ctx.nodeDir, 'elsewhere')
    mkdirSync(real, { recursive: true })
    const dir = join(h.ctx.nodeDir, 'snaps', '0', 'rank_0')
    mkdirSync(join(dir, '..'), { recursive: true })
    symlinkSync(real, dir)
    await expect(h.ls.rankLink(0, { dir, staged: false })).rejects.toThrow(`restart image ${dir} of rank 0 is not a directory (a symlink is never followed)`)
    await expect(h.ls.rankLink(0, { dir: join(h.ctx.nodeDir, 'gone'), staged: false })).rejects.toThrow('is not a directory')
  })

  test('a staged restart waits for the staging receiver to finish; close() removes the images', async () => {
    const h = await started()
    const rx = h.ls.stagingReceiver(0)
    expect(h.ls.stagingReceiver(0)).toBe(rx)
    const dir = join(h.ctx.nodeDir, 'restart', `job-${JOBID}`, 'rank_0')
    expect(rx.rootDir).toBe(dir)
    expect(h.ls.localRestartDir(0)).toBe(dir)
    const data = new TextEncoder().encode('image bytes '.repeat(1000))
    void rx.write({ path: 'img/pages.bin', offset: 0, data, codec: 'raw', last: true })
    const link = await h.ls.rankLink(0, { dir: '', staged: true })
    expect(link.restartDir).toBe(dir)
    expect(readFileSync(join(dir, 'img/pages.bin'), 'utf8')).toBe('image bytes '.repeat(1000))
    expect((await hello(h, 0, link.token)).welcome).toBe(`WELCOME RESTART ${dir}`)

    // A transfer left half-way never lets its rank start.
    void h.ls.stagingReceiver(1).write({ path: 'a', offset: 0, data: data.subarray(0, 10), codec: 'raw', last: false })
    await expect(h.ls.rankLink(1, { dir: '', staged: true })).rejects.toThrow('transfer ended with a incomplete')
    await settle()
    h.ls.close()
    expect(existsSync(join(h.ctx.nodeDir, 'restart', `job-${JOBID}`))).toBe(false)
    expect(existsSync(h.ls.socketPath)).toBe(false)
  })
})

describe('crs self through the app socket', () => {
  test('prep, capture and release go through the app; its answers come back as reports', async () => {
    const h = await started()
    const { app, welcome } = await hello(h, 0, (await h.ls.rankLink(0)).token)
    expect(welcome).toBe('WELCOME START')

    // App requests go up as orted.app; the HNP's answers come back down.
    app.send('INIT 5')
    await until(() => h.reports.some((m) => m.t === 'orted.app'), 'the INIT request')
    expect(h.reports.find((m) => m.t === 'orted.app')).toEqual({ t: 'orted.app', jobid: JOBID, rank: 0, id: 5, op: 'init', key: undefined, value: undefined, term: undefined })
    h.ls.handle({ t: 'hnp.app', jobid: JOBID, rank: 0, id: 5, ok: true })
    expect(await app.next()).toBe('OK 5')

    h.ls.handle(h.msg('prep', { crs: 'self', seq: 4, ranks: [0], options: ['term'] }))
    expect(await app.next()).toBe(`CKPT 4 term ${REF}`)
    expect(h.ckpts()).toEqual([])
    app.send('PREP STALL')
    app.send('PREP OK')
    await until(() => h.ckpts().length === 2, 'the prep answers')
    expect(h.ckptReports().map((m) => [m.seq, m.op, m.status])).toEqual([
      [4, 'prep', 'stall'],
      [4, 'prep', 'ok'],
    ])

    h.ls.handle(h.msg('capture', { crs: 'self', seq: 4, ranks: [0], options: ['term'] }))
    const dir = join(h.globalDir, REF, '4', 'rank_0')
    expect(await app.next()).toBe(`CAPTURE ${dir}`)
    writeFileSync(join(dir, 'state.json'), '{"step":42}')
    app.send('DONE OK')
    await until(() => h.ckpts().length === 4, 'captured and synced')
    expect(h.ckpts().slice(2)).toEqual(['0 captured ok', '0 synced ok'])
    const snap = h.ckptReports()[2]!.snapshot!
    expect(snap).toMatchObject({ rank: 0, node: 'n1', crs: 'self', bytes: 11, files: [{ path: 'state.json', size: 11, sum: crc32('{"step":42}') }] })
    expect(await readRankMeta(dir)).toEqual(snap)

    h.ls.handle(h.msg('release', { crs: 'self', seq: 4, ranks: [0], text: 'term' }))
    expect(await app.next()).toBe('RELEASE TERM')
    // Out of the checkpoint, a stray PREP line is not reported.
    app.send('PREP OK')
    await settle()
    expect(h.ckpts()).toHaveLength(4)
  })

  test('abort reaches the app; an app failing its capture is reported with rank and node', async () => {
    const h = await started()
    const { app } = await hello(h, 0, (await h.ls.rankLink(0)).token)
    h.ls.handle(h.msg('prep', { crs: 'self', seq: 1, ranks: [0] }))
    expect(await app.next()).toBe(`CKPT 1 - ${REF}`)
    h.ls.handle(h.msg('abort', { crs: 'self', seq: 1, ranks: [0], text: 'rank 3 exited during the checkpoint' }))
    expect(await app.next()).toBe('ABORT rank 3 exited during the checkpoint')

    h.ls.handle(h.msg('prep', { crs: 'self', seq: 2, ranks: [0] }))
    expect(await app.next()).toBe(`CKPT 2 - ${REF}`)
    app.send('PREP OK')
    h.ls.handle(h.msg('capture', { crs: 'self', seq: 2, ranks: [0] }))
    expect(await app.next()).toStartWith('CAPTURE ')
    app.send('DONE ERROR no space left')
    await until(() => h.ckpts().includes('0 captured error'), 'the capture error')
    expect(h.ckptReports().at(-1)!.message).toBe('rank 0 on n1: [crs:self] no space left')

    // The app going away is reported as an unlink.
    app.end()
    await until(() => h.reports.some((m) => m.t === 'orted.app-link' && !m.up), 'the unlink')
  })
})
