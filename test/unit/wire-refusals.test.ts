/**
 * What strangers send never reaches the job's stderr raw, and refusals cannot flood it: a frame
 * whose type holds a newline and ANSI escapes is reported escaped and length-capped; a burst of
 * refused connections gives a few warning lines, then one summary line per window.
 */
import { encode } from '@msgpack/msgpack'
import { afterAll, afterEach, beforeAll, expect, spyOn, test } from 'bun:test'
import { ActionableError } from '../../src/errors'
import { log, untrusted } from '../../src/log'
import type { HostApi, TransportPlugin } from '../../src/plugins/types'
import tcpFactory from '../../plugins/transport/tcp'
import { spawnRank } from '../../src/runtime/rank-process'
import { newSecret } from '../../src/wire/secret'
import { validateMessage } from '../../src/wire/messages'
import { DEFAULT_REFUSAL_LIMITS, RefusalLog, refusals } from '../../src/wire/refusals'
import { serve, type WireServer } from '../../src/wire/server'

const host: HostApi = { version: 'test', log, param: () => undefined, ActionableError, spawnRank }
let tcp: TransportPlugin
const warnings: string[] = []
const warnSpy = spyOn(log, 'warn').mockImplementation(((...a: unknown[]) => void warnings.push(a.join(' '))) as never)
const servers: WireServer[] = []

beforeAll(async () => {
  tcp = (await tcpFactory(host)) as TransportPlugin
})
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
  refusals.configure(DEFAULT_REFUSAL_LIMITS)
  warnings.length = 0
})
afterAll(() => warnSpy.mockRestore())

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await Bun.sleep(5)
  }
}

function frame(value: unknown): Uint8Array {
  const body = encode(value)
  const out = new Uint8Array(4 + body.length)
  new DataView(out.buffer).setUint32(0, body.length)
  out.set(body, 4)
  return out
}

/** Connect without the handshake, send `bytes`, resolve once the server hung up. */
async function badPeer(uri: string, bytes: Uint8Array): Promise<void> {
  const conn = await tcp.connect(uri)
  const closed = new Promise<void>((r) => conn.onClose(() => r()))
  conn.onData(() => {})
  conn.write(bytes)
  await closed
}

const EVIL = 'x\n\x1b[2K\rompx: job finished OK\x07' + 'A'.repeat(500)

test('untrusted: control characters escaped, length capped', () => {
  expect(untrusted('a\nb\r\tc\x1b[31md\x07\x7f\u202e')).toBe('a\\nb\\r\\tc\\e[31md\\x07\\x7f\\u202e')
  expect(untrusted('plain text, "quoted"')).toBe('plain text, "quoted"')
  const long = untrusted('y'.repeat(1000), 50)
  expect(long).toBe(`${'y'.repeat(50)}... (950 more characters)`)
  expect(untrusted(EVIL)).not.toMatch(/[\x00-\x1f\x7f]/)
})

test('validateMessage names an unknown type escaped and short', () => {
  const why = validateMessage({ t: EVIL })!
  expect(why).not.toMatch(/[\x00-\x1f\x7f]/)
  expect(why).toContain('x\\n\\e[2K\\rompx')
  expect(why.length).toBeLessThan(120)
  const rec = validateMessage({ t: 'hnp.ckpt-done', jobid: '1', ref: 'r', seq: 1, dir: 'd', bytes: 1, timing: { 'k\n\x1b[1m': 'x' } })
  expect(rec).toBe('hnp.ckpt-done.timing.k\\n\\e[1m must be a number')
})

test('an unauthenticated frame with a newline and ANSI escapes in its type is logged escaped, on one line', async () => {
  const s = await serve(tcp, '127.0.1.2', newSecret(), () => {})
  servers.push(s)
  await badPeer(s.uri, frame({ t: EVIL }))
  await until(() => warnings.length === 1)
  expect(warnings[0]).toMatch(/^wire: refused connection from 127\.0\.\d+\.\d+:\d+: /)
  expect(warnings[0]).not.toMatch(/[\x00-\x1f\x7f]/)
  expect(warnings[0]).toContain('unknown message type "x\\n\\e[2K\\rompx: job finished OK\\x07')
  expect(warnings[0]!.length).toBeLessThan(300)
})

test('a flood of refused connections: a few warnings, then one summary line', async () => {
  refusals.configure({ burst: 3, windowMs: 400 })
  const s = await serve(tcp, '127.0.1.2', newSecret(), () => {})
  servers.push(s)
  const garbage = new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n')
  await Promise.all(Array.from({ length: 40 }, () => badPeer(s.uri, garbage)))
  expect(warnings).toHaveLength(3)
  await until(() => warnings.length === 4, 2000)
  expect(warnings[3]).toMatch(/^wire: 37 more connections refused in the last 0\.4 s \(latest from 127\.0\.\d+\.\d+:\d+: /)
  // A new window: the next refusal is reported on its own again.
  await badPeer(s.uri, garbage)
  await until(() => warnings.length === 5)
  expect(warnings[4]).toMatch(/^wire: refused connection from /)
})

test('RefusalLog: nothing held back, no summary; flush ends the window', () => {
  const rl = new RefusalLog({ burst: 2, windowMs: 60_000 })
  rl.refused('a', 'one')
  rl.refused('b', 'two')
  rl.flush()
  expect(warnings).toEqual(['wire: refused connection from a: one', 'wire: refused connection from b: two'])
  rl.refused('c', 'three')
  rl.refused('d', 'four')
  rl.refused('e', 'five\nsix')
  rl.refused('f', 'seven')
  rl.flush()
  expect(warnings.slice(2)).toEqual([
    'wire: refused connection from c: three',
    'wire: refused connection from d: four',
    'wire: 2 more connections refused in the last 60 s (latest from f: seven)',
  ])
})
