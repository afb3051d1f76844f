/**
 * Fuzzing the wire codec with fixed seeds: random bytes, mutated valid frames and mutated
 * message values go through FrameDecoder, decodeBody and validateMessage. Nothing may escape
 * but the codec's own WireErrors (a different error wrapped as a WireError is caught by its
 * text), a frame body is never buffered past the length limit, a failed decoder stays failed,
 * and valid messages still round-trip whatever the chunking. Bounded: well under a second.
 */
import { encode } from '@msgpack/msgpack'
import { describe, expect, test } from 'bun:test'
import { FrameDecoder, WireError, decodeBody, encodeFrame } from '../../src/wire/codec'
import { validateMessage, type Message } from '../../src/wire/messages'
import { Rng, chunks, mutate } from './fuzz-rng'

const SEEDS = [1, 7, 0xdecaf]
const ROUNDS = 1500
/** What the codec itself says; anything else is a bug that got wrapped. */
const EXPECTED = /^(empty frame|frame of .+ exceeds the .+ limit|undecodable message body \(.*\)|bad message: .+)$/

const b = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff)
const SAMPLES: Message[] = [
  { t: 'hello', v: 2, nonce: b(32) },
  { t: 'auth', v: 2, role: 'orted', nonce: b(32), mac: b(32) },
  { t: 'reject', reason: 'authentication failed' },
  { t: 'ping', seq: 3 },
  { t: 'tool.ps' },
  { t: 'orted.output', jobid: '1.0', rank: 2, stream: 'stderr', data: b(100) },
  { t: 'orted.exit', jobid: '1.0', rank: 0, pid: 42, node: 'n1', code: null, signal: 'SIGKILL' },
  { t: 'hnp.signal', jobid: '1.0', signal: 'SIGTERM', ranks: [0, 1] },
  { t: 'orted.launched', jobid: '1.0', pids: [[0, 100], [1, 101]] },
  { t: 'hnp.ckpt-done', jobid: '1.0', ref: 'r', seq: 1, dir: '/s', bytes: 9, timing: { capture: 1.5 } },
  {
    t: 'hnp.launch', jobid: '1.0', size: 1, universeSize: 1,
    procs: [{ rank: 0, app: 0, node: 'n', localRank: 0, localSize: 1, nodeRank: 0, argv: ['a', 'b c'], cwd: '/', appEnv: { A: '1' }, stdin: false, restart: { dir: '/d', staged: true } }],
  },
  { t: 'hnp.ps', hnp: { pid: 1, uri: 'tcp://h:1', started: 0, nodes: ['n'] }, jobs: [{ jobid: '1', app: 'a', state: 'run', started: 0, procs: [{ rank: 0, node: 'n', pid: null, state: 'r', startedAt: null }] }] },
]
const FRAMES = SAMPLES.map((m) => encodeFrame(m))

function expectWireError(err: unknown): void {
  if (!(err instanceof WireError) || !EXPECTED.test(err.message)) throw err
}

/** Feed `data` in random chunks; returns the messages or the error that stopped it. */
function feed(rng: Rng, dec: FrameDecoder, data: Uint8Array): { got: Message[]; err?: WireError } {
  const got: Message[] = []
  for (const c of chunks(rng, data)) {
    try {
      got.push(...dec.push(c))
    } catch (err) {
      expectWireError(err)
      expect(() => dec.push(Uint8Array.of(0, 0, 0, 1, 0xc0))).toThrow(err as Error) // stays failed
      return { got, err: err as WireError }
    } finally {
      const body = (dec as unknown as { body: Uint8Array | null }).body
      expect(body?.length ?? 0).toBeLessThanOrEqual(dec.maxFrame)
    }
  }
  for (const m of got) expect(validateMessage(m)).toBeNull()
  return { got }
}

/** A random msgpack-able value, sometimes nested, with strings that carry control characters. */
function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 6 : 9)) {
    case 0: return rng.pick([0, -1, 1.5, 2 ** 40, -(2 ** 63), Infinity, NaN])
    case 1: return rng.pick(['', 'x', 'a\n\x1b[31mb', 'ping', 'orted', '__proto__', 'é'.repeat(rng.int(50))])
    case 2: return rng.bytes(rng.int(40))
    case 3: return rng.chance(0.5)
    case 4: return null
    case 5: return rng.int(1000)
    case 6: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1))
    case 7: return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(['t', 'seq', 'k', 'jobid', 'data', 'x']), randomValue(rng, depth + 1)]))
    default: return [randomValue(rng, depth + 1), randomValue(rng, depth + 1)]
  }
}

describe.each(SEEDS)('seed %d', (seed) => {
  test('valid frames round-trip through any chunking', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < 200; r++) {
      const picks = Array.from({ length: 1 + rng.int(6) }, () => rng.int(SAMPLES.length))
      const stream = Uint8Array.from(picks.flatMap((i) => Array.from(FRAMES[i]!)))
      const { got, err } = feed(rng, new FrameDecoder(), stream)
      expect(err).toBeUndefined()
      expect(got).toEqual(picks.map((i) => SAMPLES[i]!))
    }
  })

  test('random and mutated byte streams: only WireErrors, limits honoured', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS; r++) {
      const dec = new FrameDecoder(rng.pick([64, 4096, 1 << 20]))
      const base = rng.chance(0.2) ? rng.bytes(rng.int(200)) : rng.pick(FRAMES)
      feed(rng, dec, rng.chance(0.5) ? mutate(rng, base) : Uint8Array.from([...mutate(rng, base), ...rng.pick(FRAMES)]))
    }
  })

  test('mutated bodies: decodeBody throws only its own errors; validateMessage never throws', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS; r++) {
      const body = mutate(rng, rng.pick(FRAMES).subarray(4))
      try {
        expect(validateMessage(decodeBody(body))).toBeNull()
      } catch (err) {
        expectWireError(err)
      }
    }
  })

  test('mutated message values: validation answers, accepted ones round-trip', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS; r++) {
      const m = structuredClone(rng.pick(SAMPLES)) as Record<string, unknown>
      const keys = Object.keys(m)
      for (let e = 1 + rng.int(3); e > 0; e--) {
        const k = rng.chance(0.2) ? rng.pick(['x', 'seq', 'constructor', 'toString']) : rng.pick(keys)
        if (rng.chance(0.15)) delete m[k]
        else m[k] = randomValue(rng)
      }
      const why = validateMessage(m)
      if (why !== null) {
        expect(typeof why).toBe('string')
        expect(why).not.toMatch(/[\x00-\x1f\x7f]/)
        expect(() => encodeFrame(m as Message)).toThrow(WireError)
        continue
      }
      const { got, err } = feed(rng, new FrameDecoder(), encodeFrame(m as Message))
      expect(err).toBeUndefined()
      expect(got).toEqual([m as Message])
    }
  })

  test('raw msgpack of random values: decodeBody answers with a message or a WireError', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS; r++) {
      const v = rng.chance(0.5) ? randomValue(rng) : { t: rng.pick(['ping', 'hello', 'auth', 'tool.ps', 'x\ny']), ...(randomValue(rng, 3) as object) }
      let body: Uint8Array
      try {
        body = encode(v)
      } catch {
        continue // not encodable (the generator may make such values); not the decoder's business
      }
      try {
        decodeBody(body)
      } catch (err) {
        expectWireError(err)
      }
    }
  })
})

test('a length prefix over the limit is refused before any body is allocated', () => {
  const dec = new FrameDecoder(4096)
  expect(() => dec.push(Uint8Array.of(0x7f, 0xff, 0xff, 0xff, 1, 2, 3))).toThrow(/exceeds the 4096 bytes limit/)
  expect((dec as unknown as { body: Uint8Array | null }).body).toBeNull()
  const deep = new Uint8Array(4090).fill(0x91) // arrays nested 4090 deep inside one small frame
  const frame = Uint8Array.from([0, 0, 0x0f, 0xfa, ...deep])
  expect(() => new FrameDecoder(4096).push(frame)).toThrow(WireError)
})

test('found by this fuzzer: a tiny body declaring a huge array fails at once, without allocating it', () => {
  // dd 00ffffff: array32 of 16M elements in 5 bytes; the decoder used to pre-allocate it (~1.4 s, ~140 MB).
  for (const hex of ['dd00ffffff', 'df00ffffff', 'dc ffff', 'ddffffffff']) {
    const body = Uint8Array.from(Buffer.from(hex.replace(/ /g, ''), 'hex'))
    const t0 = performance.now()
    expect(() => decodeBody(body)).toThrow(/undecodable message body \(Max length exceeded/)
    expect(performance.now() - t0).toBeLessThan(250)
  }
  // A large honest array still decodes: the limit follows the body's size.
  const big: Message = { t: 'hnp.signal', jobid: '1', signal: 'SIGTERM', ranks: Array.from({ length: 100_000 }, (_, i) => i) }
  expect(new FrameDecoder().push(encodeFrame(big))).toEqual([big])
})
