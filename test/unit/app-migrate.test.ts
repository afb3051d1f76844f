/**
 * The app side of a migration (#12), end to end in-process over real Unix sockets: the SDK's
 * requestMigrate() through the daemon's AppServer (REQUEST MIGRATE, wireRequest) to the HNP's
 * AppServices and a fake port, and back; the CKPT options of a migration round (all_migrating,
 * migrating) as onCheckpoint sees them, RELEASE migrated= as onContinue sees it, a mover's
 * onTerminate, and a moved rank's restart (OMPX_MIGRATED=1).
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppClient } from '../../src/app/client'
import type { CheckpointInfo, ContinueInfo } from '../../src/app/checkpoint'
import { AppServer, wireRequest } from '../../src/orted/snapc/app-server'
import { AppServices, migrationOutcomeText } from '../../src/hnp/snapc/app-services'
import type { MigratePreference } from '../../src/hnp/snapc/migrate-types'

let dir: string
let server: AppServer
let clients: AppClient[]
let preps: string[]
let asked: { prefs: MigratePreference[]; requester: number }[]
let answer: () => Promise<string>
let restartDir: string | null

const RESULT = {
  moves: [{ rank: 1, from: 'n1', to: 'n3', oldPid: 100, newPid: 200, bytes: 4096, downtimeMs: 80 }],
  bytes: 4096,
  totalMs: 120,
  timing: { capture: 10 },
}

async function start(size: number): Promise<void> {
  const services = new AppServices({
    size,
    reply: (rank, id, ok, value, text) => server.reply(rank, id, ok, value, text),
    checkpoint: async () => '0 ref',
    checkpointRunning: () => false,
    fenceDone: () => {},
    migrate: (prefs, requester) => (asked.push({ prefs, requester }), answer()),
  })
  server = await AppServer.listen({
    path: join(dir, 'app.sock'),
    token: (r) => (r < size ? `tok${r}` : undefined),
    restartDir: () => restartDir,
    events: {
      linked: (rank) => services.link(rank, true),
      unlinked: (rank) => services.link(rank, false),
      prep: (rank, status) => void preps.push(`${rank} ${status}`),
      request: (rank, r) => services.request({ t: 'orted.app', jobid: '1.1', rank, id: r.id, ...wireRequest(r) }),
    },
  })
}

function client(rank: number, size: number, extra: Record<string, string> = {}, exit = (_: number) => {}): AppClient {
  const env = { OMPX_COORD_SOCK: join(dir, 'app.sock'), OMPX_COORD_TOKEN: `tok${rank}`, OMPX_RANK: `${rank}`, OMPX_SIZE: `${size}`, ...extra }
  const c = new AppClient({ env, exit })
  clients.push(c)
  return c
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(5)
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ompx-app-mig-'))
  clients = []
  preps = []
  asked = []
  answer = async () => migrationOutcomeText(RESULT)
  restartDir = null
})
afterEach(async () => {
  server?.close()
  for (const c of clients) await c.finalize().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

describe('requestMigrate', () => {
  test('the entries reach the port with the requester; the outcome comes back parsed', async () => {
    await start(4)
    const cs = [0, 1, 2, 3].map((r) => client(r, 4))
    await Promise.all(cs.map((c) => c.init()))
    const out = await cs[2]!.requestMigrate([{ rank: 1, onto: 'n3' }, { rank: 2, nearRank: 0, onto: undefined }])
    expect(asked).toEqual([{ prefs: [{ rank: 1, onto: 'n3' }, { rank: 2, nearRank: 0 }], requester: 2 }])
    expect(out.moves).toEqual(RESULT.moves)
    expect([out.bytes, out.totalMs]).toEqual([4096, 120])
    expect(JSON.parse(out.text)).toEqual(RESULT)
  })

  test('conflicting entries are passed through: the planner refuses them, the app gets its reason', async () => {
    await start(2)
    const cs = [client(0, 2), client(1, 2)]
    await Promise.all(cs.map((c) => c.init()))
    answer = () => Promise.reject(new Error('rank 1: conflicting preferences (onto n2\nand offNode)'))
    const conflicting = [{ rank: 1, onto: 'n2' }, { rank: 1, offNode: true }, { rank: 0, onto: 'n1', offNode: true }]
    await expect(cs[0]!.requestMigrate(conflicting)).rejects.toThrow('ompx/app: requestMigrate: rank 1: conflicting preferences (onto n2 and offNode)')
    expect(asked[0]!.prefs).toEqual(conflicting)
  })

  test('bad shapes are refused by the SDK before anything is sent', async () => {
    await start(2)
    const c = client(0, 2)
    await Promise.all([c.init(), client(1, 2).init()])
    const bad = (prefs: unknown) => c.requestMigrate(prefs as MigratePreference[])
    await expect(bad([])).rejects.toThrow('ompx/app: requestMigrate: nothing to migrate: the preference list is empty')
    await expect(bad({ rank: 1 })).rejects.toThrow('must be an array of { rank, onto?, nearRank?, offNode? }')
    await expect(bad([{ rank: 2 }])).rejects.toThrow('entry 0: rank must be an integer from 0 to 1, not 2')
    await expect(bad([{ rank: 0 }, { rank: 1.5 }])).rejects.toThrow('entry 1: rank must be an integer from 0 to 1, not 1.5')
    await expect(bad([{ rank: 0, onto: '' }])).rejects.toThrow('entry 0: onto must be a node name, not ""')
    await expect(bad([{ rank: 0, onto: 'n 1' }])).rejects.toThrow('entry 0: onto "n 1" contains white space')
    await expect(bad([{ rank: 0, nearRank: -1 }])).rejects.toThrow('entry 0: nearRank must be an integer from 0 to 1, not -1')
    await expect(bad([{ rank: 0, offNode: 'yes' }])).rejects.toThrow('entry 0: offNode must be true or false, not "yes"')
    await expect(bad([{ rank: 0, host: 'n2' }])).rejects.toThrow('entry 0: unknown field "host" (known: rank, onto, nearRank, offNode)')
    await expect(bad([null])).rejects.toThrow('entry 0: not an object')
    expect(asked).toEqual([])
  })

  test('standalone: a clear error', async () => {
    const c = new AppClient({ env: {} })
    await expect(c.requestMigrate([{ rank: 0 }])).rejects.toThrow('ompx/app: requestMigrate: not run under ompx (OMPX_COORD_SOCK unset)')
  })
})

describe('a migration round as the ranks see it', () => {
  test('a non-mover is held without a capture, then onContinue names the ranks that moved', async () => {
    await start(2)
    const c = client(0, 2)
    const conts: ContinueInfo[] = []
    c.onContinue((info) => void conts.push(info))
    await Promise.all([c.init(), client(1, 2).init()])
    let loops = 0
    let stop = false
    const loop = (async () => {
      while (!stop) loops++, await c.yieldToRuntime()
    })()
    server.ckpt(0, 3, ['all_migrating'], 'migrate-3')
    await until(() => preps.length > 0, 'PREP') // no onCheckpoint registered: a non-mover needs none
    expect(preps).toEqual(['0 ok'])
    expect(c.round).toEqual({ seq: 3, ref: 'migrate-3', term: false, stop: false, migrating: false, allMigrating: true })
    await Bun.sleep(20)
    const frozen = loops
    await Bun.sleep(20)
    expect(loops).toBe(frozen)
    server.release(0, 'CONTINUE', [1, 3])
    await until(() => loops > frozen, 'the loop to go on')
    stop = true
    await loop
    expect(conts).toEqual([{ migrated: [1, 3], aborted: false, allMigrating: true }])
    expect(c.round).toBeNull()
  })

  test('a mover saves its state knowing it moves, then ends through onTerminate({ migrating })', async () => {
    await start(2)
    const order: string[] = []
    const c = client(1, 2, {}, (code) => void order.push(`exit ${code}`))
    let seen: CheckpointInfo | null = null
    c.onCheckpoint((d, info) => void ((seen = info), order.push(`ckpt ${d}`)))
    c.onTerminate((info) => void order.push(`terminate ${info.migrating}`))
    await Promise.all([c.init(), client(0, 2).init()])
    server.ckpt(1, 3, ['all_migrating', 'migrating', 'term'], 'migrate-3')
    await until(() => preps.length > 0, 'PREP')
    await server.capture(1, '/work/images/rank_1')
    expect(seen!).toEqual({ seq: 3, ref: 'migrate-3', term: true, stop: false, migrating: true, allMigrating: true })
    server.release(1, 'TERM')
    await until(() => order.length === 3, 'exit')
    expect(order).toEqual(['ckpt /work/images/rank_1', 'terminate true', 'exit 0'])
  })

  test('an ordinary checkpoint and an abandoned move keep the old callbacks working', async () => {
    await start(1)
    const c = client(0, 1)
    const infos: unknown[] = []
    c.onCheckpoint((_d, info) => void infos.push(info.migrating))
    c.onContinue((info) => void infos.push(info))
    await c.init()
    server.ckpt(0, 1, [], 'ref')
    await until(() => preps.length === 1, 'PREP')
    await server.capture(0, '/snap')
    server.release(0, 'CONTINUE')
    await until(() => infos.length === 2, 'continue')
    server.ckpt(0, 2, ['all_migrating', 'future_option'], 'ref2')
    await until(() => preps.length === 2, 'PREP 2')
    server.abort(0, 'the target node died')
    await until(() => infos.length === 3, 'continue 2')
    expect(infos).toEqual([false, { migrated: [], aborted: false, allMigrating: false }, { migrated: [], aborted: true, allMigrating: true }])
  })

  test('a moved rank restarts with OMPX_MIGRATED=1: onRestart({ migrated: true })', async () => {
    restartDir = '/work/images/rank_1'
    await start(2)
    const c = client(1, 2, { OMPX_MIGRATED: '1' })
    let info: unknown = null
    c.onRestart((d, i) => void (info = { d, ...i }))
    await Promise.all([c.init(), client(0, 2).init()])
    expect(info).toEqual({ d: '/work/images/rank_1', migrated: true })
    expect([c.isRestart, c.migrated]).toEqual([true, true])
    expect(clients[1]!.migrated).toBe(false) // OMPX_MIGRATED unset: an ordinary restart
  })
})
