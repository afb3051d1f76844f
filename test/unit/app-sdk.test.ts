/** The SDK's AppClient against the real AppServer, in-process, over real Unix sockets. */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppClient } from '../../src/app/client'
import { AppServer } from '../../src/orted/snapc/app-server'

let dir: string
let server: AppServer
let restartDir: string | null
let preps: string[]
let clients: AppClient[]

/** A one-node job coordinator: INIT once `size` ranks sent it, kv with waiting GETs, named barriers. */
function coordinator(size: number) {
  const kv = new Map<string, Uint8Array>()
  const waiting = new Map<string, [number, number][]>()
  const inits: [number, number][] = []
  const barriers = new Map<string, [number, number][]>()
  return {
    linked() {},
    unlinked() {},
    prep(rank: number, status: string, message?: string) {
      preps.push(`${rank} ${status}${message ? ` ${message}` : ''}`)
    },
    request(rank: number, req: { id: number; op: string; key?: string; value?: Uint8Array; term?: boolean }) {
      switch (req.op) {
        case 'init':
          inits.push([rank, req.id])
          if (inits.length === size) for (const [r, id] of inits) server.reply(r, id, true)
          return
        case 'fin':
          return server.reply(rank, req.id, true)
        case 'put':
          kv.set(req.key!, req.value!)
          for (const [r, id] of waiting.get(req.key!) ?? []) server.reply(r, id, true, req.value!)
          waiting.delete(req.key!)
          return server.reply(rank, req.id, true)
        case 'get': {
          const v = kv.get(req.key!)
          if (v) return server.reply(rank, req.id, true, v)
          return void waiting.set(req.key!, [...(waiting.get(req.key!) ?? []), [rank, req.id]])
        }
        case 'barrier': {
          const list = [...(barriers.get(req.key!) ?? []), [rank, req.id] as [number, number]]
          barriers.set(req.key!, list)
          if (list.length === size) for (const [r, id] of list) server.reply(r, id, true), barriers.delete(req.key!)
          return
        }
        case 'checkpoint':
          return server.reply(rank, req.id, true, undefined, `7 ompx_global_snapshot_1.ckpt${req.term ? ' term' : ''}`)
      }
    },
  }
}

async function start(size = 1): Promise<void> {
  server = await AppServer.listen({
    path: join(dir, 'app.sock'),
    token: (r) => (r < size ? `tok${r}` : undefined),
    restartDir: () => restartDir,
    events: coordinator(size),
  })
}

function client(rank = 0, size = 1, token = `tok${rank}`, exit = (_: number) => {}): AppClient {
  const c = new AppClient({ env: { OMPX_COORD_SOCK: join(dir, 'app.sock'), OMPX_COORD_TOKEN: token, OMPX_RANK: `${rank}`, OMPX_SIZE: `${size}` }, exit })
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
  dir = mkdtempSync(join(tmpdir(), 'ompx-app-sdk-'))
  restartDir = null
  preps = []
  clients = []
})
afterEach(async () => {
  // Server first: a client still held by a checkpoint would wait for RELEASE before its FIN.
  server?.close()
  for (const c of clients) await c.finalize().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

describe('init and requests', () => {
  test('INIT is a barrier over all ranks; rank and size come from the environment', async () => {
    await start(2)
    const [a, b] = [client(0, 2), client(1, 2)]
    let aDone = false
    const pa = a.init().then(() => (aDone = true))
    await Bun.sleep(50)
    expect(aDone).toBe(false)
    await Promise.all([pa, b.init()])
    expect([b.rank, b.size, b.isRestart, b.restartDir]).toEqual([1, 2, false, null])
  })

  test('a wrong token is refused with the daemon reason', async () => {
    await start()
    await expect(client(0, 1, 'nope').init()).rejects.toThrow('ompx/app: init: the ompx daemon refused rank 0: bad token')
  })

  test('no daemon at the socket path: one clear error', async () => {
    const c = new AppClient({ env: { OMPX_COORD_SOCK: join(dir, 'none.sock'), OMPX_COORD_TOKEN: 'x' } })
    await expect(c.init()).rejects.toThrow(/^ompx\/app: init: cannot connect to the ompx daemon at .*none\.sock: /)
  })

  test('kv between ranks, barriers, requestCheckpoint', async () => {
    await start(2)
    const [a, b] = [client(0, 2), client(1, 2)]
    await Promise.all([a.init(), b.init()])
    const got = b.getString('from-a') // waits for the put
    await a.put('from-a', 'héllo wörld')
    expect(await got).toBe('héllo wörld')
    await b.put('bytes', new Uint8Array([0, 255, 10]))
    expect([...(await a.get('bytes'))]).toEqual([0, 255, 10])
    await b.put('empty', '')
    expect((await a.get('empty')).length).toBe(0)
    await Promise.all([a.barrier(), b.barrier()])
    await Promise.all([a.barrier('x'), b.barrier('x')])
    expect(await a.requestCheckpoint()).toEqual({ seq: 7, ref: 'ompx_global_snapshot_1.ckpt' })
    await expect(a.put('bad key', 'x')).rejects.toThrow('contains white space')
    await expect(a.put('k', new Uint8Array(1024 * 1024 + 1))).rejects.toThrow('larger than 1048576 bytes')
  })

  test('standalone: rank 0 of 1, local kv, no checkpoints', async () => {
    const c = new AppClient({ env: {} })
    await c.init()
    expect([c.standalone, c.rank, c.size]).toEqual([true, 0, 1])
    await c.put('k', 'v')
    expect(await c.getString('k')).toBe('v')
    await expect(c.get('missing')).rejects.toThrow('no value was put under this key')
    await c.barrier()
    await expect(c.requestCheckpoint()).rejects.toThrow('not run under ompx')
    await c.finalize()
  })
})

describe('checkpoints', () => {
  test('CKPT -> PREP OK -> CAPTURE -> DONE OK -> RELEASE CONTINUE; the app is held meanwhile', async () => {
    await start()
    const c = client()
    const seen: string[] = []
    c.onCheckpoint(async (d) => {
      seen.push(`ckpt ${d}`)
      await Bun.sleep(30) // an async write: the app must not move during it
      seen.push('written')
    })
    c.onContinue(() => void seen.push('continue'))
    await c.init()
    let loops = 0
    let stop = false
    const loop = (async () => {
      while (!stop) loops++, await c.yieldToRuntime()
    })()
    server.ckpt(0, 1, [], 'ref')
    await until(() => preps.length > 0, 'PREP')
    expect(preps).toEqual(['0 ok'])
    await Bun.sleep(20)
    const frozen = loops
    await server.capture(0, '/snap/rank 0')
    await Bun.sleep(20)
    expect(loops).toBe(frozen)
    server.release(0, 'CONTINUE')
    await until(() => loops > frozen, 'the loop to go on')
    stop = true
    await loop
    expect(seen).toEqual(['ckpt /snap/rank 0', 'written', 'continue'])
  })

  test('a reply that arrives during a checkpoint is delivered after RELEASE', async () => {
    await start(2)
    const [a, b] = [client(0, 2), client(1, 2)]
    a.onCheckpoint(() => {})
    await Promise.all([a.init(), b.init()])
    let got: string | null = null
    a.getString('late').then((v) => (got = v))
    server.ckpt(0, 1, [], 'ref')
    await until(() => preps.length > 0, 'PREP')
    await b.put('late', 'v')
    await Bun.sleep(30)
    expect(got).toBeNull()
    server.release(0, 'CONTINUE')
    await until(() => got === 'v', 'the deferred reply')
  })

  test('quiesced: PREP STALL, then PREP OK at quiesceEnd', async () => {
    await start()
    const c = client()
    c.onCheckpoint(() => {})
    await c.init()
    c.quiesceStart()
    c.quiesceStart()
    server.ckpt(0, 1, ['term'], 'ref')
    await until(() => preps.length > 0, 'PREP STALL')
    c.quiesceEnd()
    await Bun.sleep(20)
    expect(preps).toEqual(['0 stall'])
    c.quiesceEnd()
    await until(() => preps.length > 1, 'PREP OK')
    expect(preps).toEqual(['0 stall', '0 ok'])
  })

  test('no onCheckpoint callback: PREP NULL with the reason', async () => {
    await start()
    await client().init()
    server.ckpt(0, 1, [], 'ref')
    await until(() => preps.length > 0, 'PREP')
    expect(preps).toEqual(['0 null no onCheckpoint callback registered'])
  })

  test('a throwing onCheckpoint answers DONE ERROR with its message; ABORT calls onContinue', async () => {
    await start()
    const c = client()
    let continued = 0
    c.onCheckpoint(() => {
      throw new Error('disk full\nreally')
    })
    c.onContinue(() => void continued++)
    await c.init()
    server.ckpt(0, 1, [], 'ref')
    await until(() => preps.length > 0, 'PREP')
    await expect(server.capture(0, '/snap')).rejects.toThrow('disk full really')
    server.abort(0, 'rank 0 could not write its state')
    await until(() => continued === 1, 'onContinue')
    await c.yieldToRuntime() // not held any more
  })

  test('RELEASE TERM runs onTerminate, then exits 0', async () => {
    await start()
    const order: string[] = []
    const c = client(0, 1, 'tok0', (code) => void order.push(`exit ${code}`))
    c.onCheckpoint(() => {})
    c.onTerminate(async () => {
      await Bun.sleep(10)
      order.push('terminate')
    })
    await c.init()
    server.ckpt(0, 1, ['term'], 'ref')
    await until(() => preps.length > 0, 'PREP')
    await server.capture(0, '/snap')
    server.release(0, 'TERM')
    await until(() => order.length === 2, 'exit')
    expect(order).toEqual(['terminate', 'exit 0'])
  })

  test('WELCOME RESTART: onRestart runs with the dir before init resolves', async () => {
    restartDir = '/snap/ompx_global_snapshot_1.ckpt/0/rank_0'
    await start()
    const c = client()
    let restored = null as string | null
    c.onRestart(async (d) => {
      await Bun.sleep(10)
      restored = d
    })
    await c.init()
    expect(restored).toBe(restartDir)
    expect([c.isRestart, c.restartDir]).toEqual([true, restartDir])
  })

  test('the daemon going away fails pending requests instead of hanging', async () => {
    await start(2)
    const c = client(0, 2)
    const init = c.init()
    await until(() => server.linked(0), 'link')
    server.close()
    await expect(init).rejects.toThrow('ompx/app: init: the connection to the ompx daemon was lost')
  })
})
