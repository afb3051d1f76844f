/** The daemon's AppServer against raw socket clients: handshake, grammar, framing, captures. */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { log } from '../../src/log'
import { AppServer, type AppRequest } from '../../src/orted/snapc/app-server'

const TOKENS: Record<number, string> = { 0: 'aa00', 1: 'bb11' }
let dir: string
let server: AppServer
let events: string[]
let requests: [number, AppRequest][]
let restart: Record<number, string> = {}
let throwIn: string | null = null
let lastPid = 0

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ompx-app-srv-'))
  events = []
  requests = []
  restart = {}
  throwIn = null
  const rec = (name: string, s: string) => {
    events.push(s)
    if (throwIn === name) throw new Error(`handler ${name} exploded`)
  }
  server = await AppServer.listen({
    path: join(dir, 'app.sock'),
    token: (r) => TOKENS[r],
    restartDir: (r) => restart[r] ?? null,
    events: {
      linked: (r, pid) => ((lastPid = pid), rec('linked', `linked ${r}`)),
      unlinked: (r) => rec('unlinked', `unlinked ${r}`),
      request: (r, req) => (requests.push([r, req]), rec('request', `request ${r} ${req.op} ${req.id}`)),
      prep: (r, st, m) => rec('prep', `prep ${r} ${st}${m ? ` ${m}` : ''}`),
    },
  })
})
afterEach(() => {
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

interface Raw {
  send(text: string | Uint8Array): void
  next(ms?: number): Promise<string>
  closed(ms?: number): Promise<void>
  end(): void
}

async function raw(path = join(dir, 'app.sock')): Promise<Raw> {
  const lines: string[] = []
  let buf = ''
  let isClosed = false
  let wake = () => {}
  // Bun's write may take only part of a big buffer: the rest goes out on drain, in order.
  let queue: Uint8Array[] = []
  const flush = () => {
    while (queue.length) {
      const n = s.write(queue[0]!)
      if (n < queue[0]!.length) return void (queue[0] = queue[0]!.subarray(Math.max(n, 0)))
      queue.shift()
    }
  }
  const s = await Bun.connect({
    unix: path,
    socket: {
      data(_s, d) {
        buf += new TextDecoder().decode(d)
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) lines.push(buf.slice(0, nl)), (buf = buf.slice(nl + 1))
        wake()
      },
      drain: () => flush(),
      close() {
        isClosed = true
        queue = []
        wake()
      },
    },
  })
  const until = async (cond: () => boolean, ms: number, what: string) => {
    const deadline = Date.now() + ms
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>((r) => ((wake = r), setTimeout(r, 20)))
    }
  }
  return {
    send(t) {
      queue.push(typeof t === 'string' ? new TextEncoder().encode(`${t}\n`) : t)
      if (queue.length === 1) flush()
    },
    async next(ms = 2000) {
      await until(() => lines.length > 0 || isClosed, ms, 'a line')
      if (!lines.length) throw new Error('closed without a line')
      return lines.shift()!
    },
    closed: (ms = 2000) => until(() => isClosed, ms, 'close'),
    end: () => s.end(),
  }
}

async function hello(rank = 0): Promise<Raw> {
  const c = await raw()
  c.send(`HELLO 1 ${rank} ${TOKENS[rank]} ${process.pid}`)
  expect(await c.next()).toBe('WELCOME START')
  return c
}

const settle = () => Bun.sleep(30)

describe('handshake', () => {
  test('a connection that sends no HELLO in time is closed; a linked rank is not', async () => {
    const path = join(dir, 'idle.sock')
    const idle = await AppServer.listen({ path, token: (r) => TOKENS[r], restartDir: () => null, events: server['opts'].events, helloTimeoutMs: 150 })
    try {
      const silent = await raw(path)
      const partial = await raw(path)
      partial.send(new TextEncoder().encode('HELLO 1 0'))
      const ranked = await raw(path)
      ranked.send(`HELLO 1 0 ${TOKENS[0]} 1`)
      expect(await ranked.next()).toBe('WELCOME START')
      await silent.closed(1000)
      await partial.closed(1000)
      await Bun.sleep(200)
      expect(idle.linked(0)).toBe(true)
    } finally {
      idle.close()
    }
  })

  test('a good HELLO is welcomed and linked; the socket is 0600', async () => {
    expect(statSync(join(dir, 'app.sock')).mode & 0o777).toBe(0o600)
    await hello(1)
    expect(server.linked(1)).toBe(true)
    expect(events).toEqual(['linked 1'])
    expect(lastPid).toBe(process.pid)
  })

  test('a restarted rank gets WELCOME RESTART with its dir (spaces kept)', async () => {
    restart[0] = '/snap/my dir/rank_0'
    const c = await raw()
    c.send(`HELLO 1 0 ${TOKENS[0]} 1`)
    expect(await c.next()).toBe('WELCOME RESTART /snap/my dir/rank_0')
  })

  test.each([
    ['HELLO 1 0 wrong 1', 'DENIED bad token'],
    ['HELLO 1 0 aa0 1', 'DENIED bad token'],
    ['HELLO 1 7 aa00 1', 'DENIED rank 7 is not a rank of this job on this node'],
    ['HELLO 2 0 aa00 1', 'DENIED unsupported protocol version 2 (this daemon speaks 1)'],
  ])('%s -> %s and close', async (line, answer) => {
    const c = await raw()
    c.send(line)
    expect(await c.next()).toBe(answer)
    await c.closed()
    expect(events).toEqual([])
  })

  test('a second HELLO for a linked rank is refused; the first stays linked', async () => {
    const first = await hello(0)
    const c = await raw()
    c.send(`HELLO 1 0 ${TOKENS[0]} 2`)
    expect(await c.next()).toBe('DENIED rank 0 is already connected')
    await c.closed()
    expect(server.linked(0)).toBe(true)
    first.send('INIT 1')
    await settle()
    expect(events).toEqual(['linked 0', 'request 0 init 1'])
  })

  test('anything before HELLO closes the connection without an answer', async () => {
    const c = await raw()
    c.send('INIT 1')
    await c.closed()
    expect(events).toEqual([])
  })

  test('unlinked fires when the rank goes; it may then reconnect', async () => {
    const c = await hello(0)
    c.end()
    await settle()
    expect(events).toEqual(['linked 0', 'unlinked 0'])
    await hello(0)
  })
})

describe('requests and replies', () => {
  test('every request parses; replies are formatted as the spec says', async () => {
    const c = await hello(0)
    c.send('INIT 1')
    c.send(`PUT 2 k.1 ${Buffer.from('héllo').toString('base64')}`)
    c.send('GET 3 k.1')
    c.send('BARRIER 4 phase-2')
    c.send('REQUEST 5 CHECKPOINT term')
    c.send('REQUEST 6 CHECKPOINT')
    c.send('PUT 7 empty ')
    c.send('FIN 8')
    await settle()
    const byId = Object.fromEntries(requests.map(([, r]) => [r.id, r]))
    expect(requests.map(([, r]) => r.op)).toEqual(['init', 'put', 'get', 'barrier', 'checkpoint', 'checkpoint', 'put', 'fin'])
    expect(new TextDecoder().decode(byId[2]!.value)).toBe('héllo')
    expect(byId[3]!.key).toBe('k.1')
    expect(byId[4]!.key).toBe('phase-2')
    expect([byId[5]!.term, byId[6]!.term]).toEqual([true, false])
    expect(byId[7]!.value!.length).toBe(0)
    server.reply(0, 1, true)
    server.reply(0, 3, true, new Uint8Array([1, 2, 255]))
    server.reply(0, 5, true, undefined, '3 ompx_global_snapshot_9.ckpt')
    server.reply(0, 4, false, undefined, 'barrier\nbroken')
    server.reply(0, 9, true, 'str')
    expect([await c.next(), await c.next(), await c.next(), await c.next(), await c.next()]).toEqual([
      'OK 1',
      'VALUE 3 AQL/',
      'OK 5 3 ompx_global_snapshot_9.ckpt',
      'ERR 4 barrier broken',
      'VALUE 9 c3Ry',
    ])
  })

  test.each([
    ['FROB 9', 'ERR 9 unknown request'],
    ['PUT 3 key not-base64!', 'ERR 3 the value is not valid base64'],
    ['GET 4', 'ERR 4 usage: GET <id> <key>'],
    [`GET 5 ${'k'.repeat(257)}`, 'ERR 5 key is longer than 256 bytes'],
    ['REQUEST 6 RESTART', 'ERR 6 usage: REQUEST <id> CHECKPOINT [term] | REQUEST <id> MIGRATE <base64 json>'],
    ['INIT 7 extra', 'ERR 7 INIT takes no arguments'],
  ])('%s -> %s, connection kept', async (line, answer) => {
    const c = await hello(0)
    c.send(line)
    expect(await c.next()).toBe(answer)
    c.send('INIT 8')
    await settle()
    expect(events).toEqual(['linked 0', 'request 0 init 8'])
  })

  test.each(['FROB', 'PREP MAYBE', 'DONE', `HELLO 1 0 ${TOKENS[0]} 1`])('%s without an id closes the connection', async (line) => {
    const c = await hello(0)
    c.send(line)
    await c.closed()
    expect(events).toEqual(['linked 0', 'unlinked 0'])
  })

  test('a throwing event handler costs nothing but a log line', async () => {
    throwIn = 'request'
    const level = log.level
    log.level = -1 // the expected error lines would only clutter the test output
    const c = await hello(0)
    c.send('INIT 1')
    c.send('FIN 2')
    await settle()
    expect(events).toEqual(['linked 0', 'request 0 init 1', 'request 0 fin 2'])
    expect(server.linked(0)).toBe(true)
    server.reply(0, 2, true)
    expect(await c.next()).toBe('OK 2')
    log.level = level
  })
})

describe('framing', () => {
  test('a line split into single bytes, and many lines in one chunk', async () => {
    const c = await hello(0)
    for (const b of new TextEncoder().encode('INIT 1\n')) c.send(new Uint8Array([b])), await Bun.sleep(1)
    c.send('BARRIER 2 a\nBARRIER 3 b\r\nGET 4 c\nFIN 5')
    await settle()
    expect(requests.map(([, r]) => `${r.op}:${r.key ?? ''}`)).toEqual(['init:', 'barrier:a', 'barrier:b', 'get:c', 'fin:'])
  })

  test('a line over the limit closes the connection; a 1 MiB value fits', async () => {
    const c = await hello(0)
    c.send(`PUT 1 big ${Buffer.alloc(1024 * 1024, 7).toString('base64')}`)
    for (let i = 0; i < 100 && !requests.length; i++) await settle()
    expect(requests[0]![1].value!.length).toBe(1024 * 1024)
    c.send(new Uint8Array(3 * 1024 * 1024).fill(65))
    await c.closed()
    expect(events).toEqual(['linked 0', 'request 0 put 1', 'unlinked 0'])
  })
})

describe('checkpoint lines', () => {
  test('CKPT, PREP, CAPTURE, DONE, RELEASE, ABORT', async () => {
    const c = await hello(1)
    server.ckpt(1, 3, [], 'ompx_global_snapshot_1.ckpt')
    server.ckpt(1, 4, ['term', 'stop'], 'ref')
    expect([await c.next(), await c.next()]).toEqual(['CKPT 3 - ompx_global_snapshot_1.ckpt', 'CKPT 4 term,stop ref'])
    c.send('PREP STALL')
    c.send('PREP OK')
    c.send('PREP NULL no callback here')
    c.send('PREP ERROR disk full')
    const cap = server.capture(1, '/snap/x y')
    expect(await c.next()).toBe('CAPTURE /snap/x y')
    c.send('DONE OK')
    await cap
    const bad = server.capture(1, '/snap/z')
    await c.next()
    c.send('DONE ERROR cannot write state')
    await expect(bad).rejects.toThrow('cannot write state')
    server.release(1, 'TERM')
    server.abort(1, 'rank 0 failed\nbadly')
    expect([await c.next(), await c.next()]).toEqual(['RELEASE TERM', 'ABORT rank 0 failed badly'])
    expect(events).toEqual(['linked 1', 'prep 1 stall', 'prep 1 ok', 'prep 1 null no callback here', 'prep 1 error disk full'])
  })

  test('a capture fails when the rank disconnects, or is not connected', async () => {
    const c = await hello(0)
    const cap = server.capture(0, '/snap/a')
    await c.next()
    c.end()
    await expect(cap).rejects.toThrow('rank 0 disconnected during the capture')
    await expect(server.capture(1, '/x')).rejects.toThrow('rank 1 is not connected')
  })

  test('close() closes connections and removes the socket', async () => {
    const c = await hello(0)
    server.close()
    await c.closed()
    expect(existsSync(join(dir, 'app.sock'))).toBe(false)
  })
})
