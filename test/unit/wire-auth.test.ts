/**
 * The handshake, channels and transports over real sockets (tcp on 127.0.1.x, unix sockets in a
 * temp dir): good peers get through both ways, bad ones are dropped with one warning line each,
 * and the server keeps serving good clients after every bad one.
 */
import { encode } from '@msgpack/msgpack'
import { afterAll, afterEach, beforeAll, describe, expect, spyOn, test } from 'bun:test'
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { log } from '../../src/log'
import { Params } from '../../src/params/params'
import { Registry } from '../../src/plugins/registry'
import type { HostApi, TransportPlugin } from '../../src/plugins/types'
import type { RawConn } from '../../src/wire/transport'
import tcpFactory from '../../plugins/transport/tcp'
import unixFactory from '../../plugins/transport/unix'
import { clientMac, initiateHandshake, serverMac } from '../../src/wire/auth'
import { newSecret, parseSecret } from '../../src/wire/secret'
import { Channel, clientConnect } from '../../src/wire/channel'
import { transportFor } from '../../src/plugins/registry'
import { FrameDecoder, FramedConn, encodeFrame } from '../../src/wire/codec'
import { WIRE_PROTOCOL_VERSION, type Message } from '../../src/wire/messages'
import { serve, type WireServer } from '../../src/wire/server'
import { refusals } from '../../src/wire/refusals'
import { spawnRank } from '../../src/runtime/rank-process'

/** A protocol version this build does not speak. */
const OTHER = WIRE_PROTOCOL_VERSION + 1

const host: HostApi = { version: 'test', log, param: () => undefined, ActionableError, spawnRank }
let tcp: TransportPlugin
let unix: TransportPlugin
const dir = mkdtempSync(join(tmpdir(), 'ompx-wire-'))
const SECRET = newSecret()
const warnings: string[] = []
const warnSpy = spyOn(log, 'warn').mockImplementation(((...a: unknown[]) => void warnings.push(a.join(' '))) as never)

beforeAll(async () => {
  tcp = (await tcpFactory(host)) as TransportPlugin
  unix = (await unixFactory(host)) as TransportPlugin
})
afterAll(() => {
  warnSpy.mockRestore()
  rmSync(dir, { recursive: true, force: true })
})

const servers: WireServer[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
  refusals.flush() // each test starts a fresh rate-limit window (see wire-refusals.test.ts)
  warnings.length = 0
})

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await Bun.sleep(5)
  }
}

/** A server that answers tool.ps and echoes orted.output back; records its channels. */
async function echoServer(transport = tcp, address = '127.0.1.2', opts = {}): Promise<WireServer & { accepted: Channel[] }> {
  const accepted: Channel[] = []
  const s = await serve(transport, address, SECRET, (ch) => {
    accepted.push(ch)
    ch.on('tool.ps', () => ch.send({ t: 'hnp.ps', hnp: { pid: process.pid, uri: s.uri, started: 1, nodes: [] }, jobs: [] }))
    ch.on('orted.output', (m) => ch.send(m))
  }, opts)
  servers.push(s)
  return Object.assign(s, { accepted })
}

/** A good client still gets served (run after every bad peer). */
async function expectServes(s: WireServer, transport = tcp): Promise<void> {
  const ch = await clientConnect(transport, s.uri, SECRET, 'tool')
  const reply = await ch.request({ t: 'tool.ps' }, 'hnp.ps', 2000)
  expect(reply.hnp.pid).toBe(process.pid)
  ch.close()
}

/** Connect without the handshake; gather what the server says and when it hangs up. */
async function rawPeer(uri: string, transport = tcp) {
  const conn: RawConn = await transport.connect(uri)
  const got: Message[] = []
  const fc = new FramedConn(conn)
  let closed = false
  fc.setSink({ message: (m) => got.push(m), protocolError: () => {}, ended: () => (closed = true) })
  return { conn, fc, got, isClosed: () => closed }
}

describe('secrets', () => {
  test('newSecret is 64 hex digits, fresh each time, and parses to 32 bytes', () => {
    const a = newSecret()
    expect(a).toMatch(/^[0-9a-f]{64}$/)
    expect(newSecret()).not.toBe(a)
    expect(parseSecret(`${a}\n`)).toHaveLength(32)
  })
  test('parseSecret rejects bad input without echoing it', () => {
    expect(() => parseSecret('zz-not-hex')).toThrow(ActionableError)
    expect(() => parseSecret('zz-not-hex')).not.toThrow(/zz-not-hex/)
    expect(() => parseSecret(new Uint8Array(5))).toThrow(/32 bytes/)
  })
})

describe('handshake', () => {
  test('right secret: both sides authenticate, roles and early messages come through', async () => {
    const s = await serve(tcp, '127.0.1.2', SECRET, (ch) => {
      // Sent at once, before the client has even registered a handler: must not be lost.
      ch.send({ t: 'ping', seq: 42 })
      ch.on('pong', (m) => ch.send({ t: 'ping', seq: m.seq + 1 }))
    })
    servers.push(s)
    expect(s.uri).toMatch(/^tcp:\/\/127\.0\.1\.2:\d+$/)
    const ch = await clientConnect(tcp, s.uri, SECRET, 'orted')
    const seen: number[] = []
    ch.on('ping', (m) => {
      seen.push(m.seq)
      if (m.seq === 42) ch.send({ t: 'pong', seq: 42 })
    })
    await until(() => seen.length === 2)
    expect(seen).toEqual([42, 43])
    expect(ch.role).toBe('orted')
    await until(() => s.channels.size === 1)
    expect([...s.channels][0]!.role).toBe('orted')
    expect(warnings).toEqual([])
    ch.close()
  })

  test('wrong secret: the client is refused with a clear error, the server warns once', async () => {
    const s = await echoServer()
    const err = await clientConnect(tcp, s.uri, newSecret(), 'tool').catch((e) => e)
    expect(err).toBeInstanceOf(ActionableError)
    expect(err.message).toMatch(/refused us: authentication failed \(wrong job secret\?\)/)
    await until(() => warnings.length > 0)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/refused connection from 127\.0\.\d+\.\d+:\d+: authentication failed/)
    expect(warnings[0]).not.toContain(SECRET)
    await expectServes(s)
  })

  test('impostor server (does not know the secret): the client refuses to talk to it', async () => {
    const fake = await tcp.listen('127.0.1.3', (conn) => {
      const fc = new FramedConn(conn)
      fc.setSink({
        message: (m) => m.t === 'auth' && fc.send({ t: 'welcome', mac: crypto.getRandomValues(new Uint8Array(32)) }),
        protocolError: () => {},
        ended: () => {},
      })
      fc.send({ t: 'hello', v: WIRE_PROTOCOL_VERSION, nonce: crypto.getRandomValues(new Uint8Array(32)) })
    })
    const err = await clientConnect(tcp, fake.uri, SECRET, 'tool').catch((e) => e)
    fake.close()
    expect(err).toBeInstanceOf(ActionableError)
    expect(err.message).toMatch(/failed to prove it knows the job secret/)
  })

  const badPeers: [string, (p: Awaited<ReturnType<typeof rawPeer>>) => void, RegExp, string | null][] = [
    ['garbage bytes instead of auth', (p) => p.conn.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /exceeds the 4096 bytes limit|undecodable/, 'malformed handshake'],
    ['a huge length prefix as first bytes', (p) => p.conn.write(Uint8Array.of(0x7f, 0xff, 0xff, 0xff)), /frame of 2048 MiB exceeds the 4096 bytes limit/, 'malformed handshake'],
    ['another message before auth', (p) => p.fc.send({ t: 'tool.ps' }), /sent "tool\.ps" before authenticating/, 'expected auth'],
    ['an unknown message type before auth', (p) => p.conn.write(encodeFrameUnchecked({ t: 'sudo' })), /unknown message type "sudo"/, 'malformed handshake'],
    [
      'a wrong protocol version',
      (p) => {
        const hello = p.got[0] as Extract<Message, { t: 'hello' }>
        const nonce = new Uint8Array(32)
        p.fc.send({ t: 'auth', v: OTHER, role: 'tool', nonce, mac: clientMac(parseSecret(SECRET), OTHER, 'tool', hello.nonce, nonce) })
      },
      new RegExp(`speaks wire protocol v${OTHER}, we speak v${WIRE_PROTOCOL_VERSION}`),
      `protocol version ${OTHER} not supported`,
    ],
  ]
  test.each(badPeers)('%s: dropped with one warning, others still served', async (_name, act, warn, rejectReason) => {
    const s = await echoServer()
    const p = await rawPeer(s.uri)
    await until(() => p.got.length === 1) // the hello
    act(p)
    await until(p.isClosed)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(warn)
    if (rejectReason) expect(p.got.find((m) => m.t === 'reject')).toMatchObject({ reason: expect.stringContaining(rejectReason) })
    await expectServes(s)
    expect(warnings).toHaveLength(1)
  })

  test('silence: the server gives up after the auth timeout', async () => {
    const s = await echoServer(tcp, '127.0.1.2', { timeoutMs: 150 })
    const p = await rawPeer(s.uri)
    await until(p.isClosed)
    expect(p.got.map((m) => m.t)).toEqual(['hello', 'reject'])
    expect(warnings).toEqual([expect.stringMatching(/no authentication within 0\.15 s/)])
    await expectServes(s)
  })

  test('welcome and a big first message in one chunk: the frame limit is raised in between', async () => {
    let feed: (b: Uint8Array) => void = () => {}
    const written = new FrameDecoder()
    const sent: Message[] = []
    const fake: RawConn = { remote: 'fake', write: (b) => void sent.push(...written.push(b)), onData: (cb) => (feed = cb), onClose: () => {}, close: () => {} }
    const fc = new FramedConn(fake)
    const key = parseSecret(SECRET)
    const done = initiateHandshake(fc, key, 'tool', 'fake://')
    const serverNonce = crypto.getRandomValues(new Uint8Array(32))
    feed(encodeFrame({ t: 'hello', v: WIRE_PROTOCOL_VERSION, nonce: serverNonce }))
    const auth = sent[0] as Extract<Message, { t: 'auth' }>
    const data = new Uint8Array(100_000).fill(9)
    feed(Uint8Array.from([...encodeFrame({ t: 'welcome', mac: serverMac(key, auth.nonce, serverNonce) }), ...encodeFrame({ t: 'orted.output', jobid: 'j', rank: 0, stream: 'stdout', data })]))
    await done
    const ch = new Channel(fc, 'tool')
    const got = await new Promise<Extract<Message, { t: 'orted.output' }>>((resolve) => ch.on('orted.output', resolve))
    expect(got.data.length).toBe(100_000)
  })

  test('a role the server does not accept is refused', async () => {
    const s = await echoServer(tcp, '127.0.1.2', { roles: ['orted'] })
    await expect(clientConnect(tcp, s.uri, SECRET, 'tool')).rejects.toThrow(/role tool not accepted/)
  })

  test('nothing listening: a one-line connect error', async () => {
    const s = await echoServer()
    const uri = s.uri
    s.close()
    await expect(clientConnect(tcp, uri, SECRET, 'tool')).rejects.toThrow(/^cannot connect to tcp:\/\//)
  })
})

/** Frame any object (the codec itself refuses to send unknown types). */
function encodeFrameUnchecked(obj: object): Uint8Array {
  const body = encode(obj)
  const f = new Uint8Array(4 + body.length)
  new DataView(f.buffer).setUint32(0, body.length)
  f.set(body, 4)
  return f
}

describe('authenticated peers that misbehave', () => {
  async function authedRaw(s: WireServer): Promise<RawConn> {
    // Authenticate properly, then grab the socket underneath to misbehave on it.
    const ch = await clientConnect(tcp, s.uri, SECRET, 'orted')
    return (ch as unknown as { fc: FramedConn }).fc.raw
  }
  test.each([
    ['garbage frame', Uint8Array.of(0, 0, 0, 2, 0xc1, 0xc1), /dropping orted connection .*: (undecodable|bad message)/],
    ['oversized frame', Uint8Array.of(0x7f, 0xff, 0xff, 0xff), /frame of 2048 MiB exceeds the 64 MiB limit/],
    ['unknown type', encodeFrameUnchecked({ t: 'orted.selfdestruct' }), /unknown message type "orted\.selfdestruct"/],
  ])('%s: dropped, others still served', async (_n, bytes, re) => {
    const s = await echoServer()
    const raw = await authedRaw(s)
    await until(() => s.channels.size === 1)
    raw.write(bytes)
    await until(() => s.channels.size === 0)
    expect(warnings).toEqual([expect.stringMatching(re)])
    await expectServes(s)
  })
})

describe('channels', () => {
  test('request: reply, error reply, timeout, close', async () => {
    const s = await serve(tcp, '127.0.1.2', SECRET, (ch) => {
      ch.on('tool.ps', () => ch.send({ t: 'error', message: 'no ps for you' }))
      ch.on('tool.stop', () => ch.close())
    })
    servers.push(s)
    const ch = await clientConnect(tcp, s.uri, SECRET, 'tool')
    await expect(ch.request({ t: 'tool.ps' }, 'hnp.ps')).rejects.toThrow('no ps for you')
    await expect(ch.request({ t: 'ping', seq: 1 }, 'pong', 100)).rejects.toThrow(/no "pong" .* within 0\.1 s/)
    let closed = 0
    ch.onClose(() => closed++)
    await expect(ch.request({ t: 'tool.stop' }, 'hnp.submitted')).rejects.toThrow(/closed before "hnp.submitted"/)
    await until(() => closed === 1)
    expect(ch.closed).toBe(true)
    expect(ch.send({ t: 'tool.ps' })).toBe(false)
  })

  test('a throwing handler is logged and the channel keeps working', async () => {
    const errors: string[] = []
    const errSpy = spyOn(log, 'error').mockImplementation(((...a: unknown[]) => void errors.push(a.join(' '))) as never)
    const s = await echoServer()
    const ch = await clientConnect(tcp, s.uri, SECRET, 'tool')
    ch.on('hnp.ps', () => {
      throw new Error('handler bug')
    })
    await ch.request({ t: 'tool.ps' }, 'hnp.ps')
    await ch.request({ t: 'tool.ps' }, 'hnp.ps')
    errSpy.mockRestore()
    expect(errors[0]).toMatch(/handler for "hnp.ps" .* failed: handler bug/)
    ch.close()
  })

  test('transportFor picks by scheme', async () => {
    const registry = await Registry.load({ params: new Params({ env: {}, cli: [], home: dir, cwd: dir }), builtins: [
      { file: 'tcp.ts', factory: tcpFactory },
      { file: 'unix.ts', factory: unixFactory },
    ] })
    expect(transportFor(registry, 'tcp://127.0.0.1:1').name).toBe('tcp')
    expect(transportFor(registry, 'unix:///x.sock').name).toBe('unix')
    expect(() => transportFor(registry, 'udp://x:1')).toThrow(/no transport plugin handles udp:\/\/ URIs \(available: tcp:\/\/, unix:\/\/\)/)
    expect(() => transportFor(registry, '127.0.0.1:5')).toThrow(/is not a URI/)
    const s = await echoServer()
    await expectServes(s, transportFor(registry, s.uri))
  })
})

describe('transports', () => {
  test('unix: socket is 0600, URI is unix://<path>, file removed on close', async () => {
    const path = join(dir, 'sub', 'hnp.sock')
    const s = await echoServer(unix, path)
    expect(s.uri).toBe(`unix://${path}`)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700)
    await expectServes(s, unix)
    s.close()
    expect(existsSync(path)).toBe(false)
  })

  test('unix: refuses to steal a live socket, replaces a dead one', async () => {
    const path = join(dir, 'busy.sock')
    const a = await echoServer(unix, path)
    await expect(serve(unix, path, SECRET, () => {})).rejects.toThrow(/another process is listening/)
    a.close()
    // A listener that dies by SIGKILL leaves its socket file behind.
    const child = Bun.spawn([process.execPath, '-e', `Bun.listen({ unix: ${JSON.stringify(path)}, socket: { data() {} } }); console.log('up'); setInterval(() => {}, 1000)`], { stdout: 'pipe' })
    await child.stdout.getReader().read()
    child.kill('SIGKILL')
    await child.exited
    expect(existsSync(path)).toBe(true)
    const b = await echoServer(unix, path)
    await expectServes(b, unix)
  })

  test('tcp: fixed port and bad addresses', async () => {
    const probe = await tcp.listen('127.0.1.4', () => {})
    const port = Number(probe.uri.split(':').pop())
    probe.close()
    const s = await echoServer(tcp, `127.0.1.4:${port}`)
    expect(s.uri).toBe(`tcp://127.0.1.4:${port}`)
    await expect(tcp.listen('127.0.1.4:99999', () => {})).rejects.toThrow(/bad port/)
    await expect(tcp.listen(`127.0.1.4:${port}`, () => {})).rejects.toThrow(/cannot listen on tcp 127\.0\.1\.4/)
    await expect(tcp.connect('tcp://127.0.1.4')).rejects.toThrow(/has no port/)
  })

  for (const kind of ['tcp', 'unix'] as const) {
    test(`${kind}: a 10 MB message arrives intact, in order with small ones, both ways`, async () => {
      const t = kind === 'tcp' ? tcp : unix
      const s = await echoServer(t, kind === 'tcp' ? '127.0.1.2' : join(dir, 'big.sock'))
      const ch = await clientConnect(t, s.uri, SECRET, 'orted')
      const big = new Uint8Array(10 * 1024 * 1024)
      for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536))
      const got: Extract<Message, { t: 'orted.output' }>[] = []
      ch.on('orted.output', (m) => got.push(m))
      const sent = [big, Uint8Array.of(1), big.subarray(5, 3_000_005), Uint8Array.of(2)]
      sent.forEach((data, rank) => ch.send({ t: 'orted.output', jobid: 'j', rank, stream: 'stdout', data }))
      await until(() => got.length === sent.length, 10_000)
      expect(got.map((m) => m.rank)).toEqual([0, 1, 2, 3])
      got.forEach((m, i) => expect(Buffer.compare(m.data, sent[i]!)).toBe(0))
      ch.close()
    })
  }
})
