/**
 * Fuzzing the app-coordinator line protocol with fixed seeds: random and mutated byte streams
 * through LineReader (lines come out in order, nothing is buffered past the limit, an overlong
 * line stops the reader), random and mutated lines through parseHello / parseRankLine (they
 * answer, never throw, and what they accept is well-formed), valid requests round-trip, and a
 * real AppServer fed garbage on many connections keeps serving a good rank.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LineReader, MAX_VALUE, badKey, fromB64, toB64 } from '../../src/app/lines'
import { parseHello, parseRankLine } from '../../src/orted/snapc/app-protocol'
import { AppServer } from '../../src/orted/snapc/app-server'
import { Rng, chunks, mutate } from './fuzz-rng'

const SEEDS = [3, 11, 0xbeef]
const ROUNDS = 2000
const enc = new TextEncoder()
const VALID = [
  'HELLO 1 0 aa00 123', 'INIT 1', 'FIN 2', 'PUT 3 key aGVsbG8=', 'PUT 4 k ', 'GET 5 key', 'BARRIER 6 b',
  'REQUEST 7 CHECKPOINT', 'REQUEST 8 CHECKPOINT term', 'PREP OK', 'PREP ERROR it broke', 'DONE OK', 'DONE ERROR disk full',
]

describe.each(SEEDS)('seed %d', (seed) => {
  test('LineReader: lines in order, bounded buffer, overlong lines stop it', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS / 4; r++) {
      const max = rng.pick([8, 64, 256])
      const lines = Array.from({ length: rng.int(8) }, () => (rng.chance(0.5) ? rng.pick(VALID) : Buffer.from(rng.bytes(rng.int(max + 4))).toString('latin1').replace(/\n/g, '')))
      const stream = rng.chance(0.3) ? mutate(rng, enc.encode(lines.join('\n'))) : enc.encode(lines.map((l) => `${l}\n`).join(''))
      const got: string[] = []
      const reader = new LineReader((l) => got.push(l), max)
      let ok = true
      for (const c of chunks(rng, stream)) {
        ok = reader.push(c)
        expect((reader as unknown as { size: number }).size).toBeLessThanOrEqual(max)
        if (!ok) break
      }
      const complete = Buffer.from(stream).toString('latin1').split('\n').slice(0, -1)
      const firstLong = complete.findIndex((l) => l.length > max)
      const expected = (firstLong < 0 ? complete : complete.slice(0, firstLong)).map((l) => new TextDecoder().decode(Buffer.from(l, 'latin1')).replace(/\r$/, ''))
      expect(got).toEqual(expected)
      if (ok) expect(firstLong).toBe(-1)
    }
  })

  test('parseHello and parseRankLine answer any line and accept only well-formed ones', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS; r++) {
      const bytes = rng.chance(0.2) ? rng.bytes(rng.int(80)) : mutate(rng, enc.encode(rng.pick(VALID)))
      const line = new TextDecoder().decode(bytes)
      const h = parseHello(line)
      if (h) {
        expect(Number.isSafeInteger(h.rank) && h.rank >= 0 && Number.isSafeInteger(h.pid)).toBe(true)
        expect(h.token).not.toMatch(/ /)
      }
      const m = parseRankLine(line)
      expect(['request', 'prep', 'done', 'error', 'bad']).toContain(m.kind)
      if (m.kind === 'request') {
        expect(Number.isSafeInteger(m.req.id) && m.req.id >= 0).toBe(true)
        if (m.req.op === 'get' || m.req.op === 'put' || m.req.op === 'barrier') expect(badKey(m.req.key!)).toBeNull()
        if (m.req.op === 'put') expect(m.req.value!.length).toBeLessThanOrEqual(MAX_VALUE)
      }
      if (m.kind === 'error' || m.kind === 'bad') expect(m.message.length).toBeLessThan(200)
    }
  })

  test('valid requests round-trip', () => {
    const rng = new Rng(seed)
    for (let r = 0; r < ROUNDS / 4; r++) {
      const id = rng.int(1e9)
      const key = Buffer.from(rng.bytes(1 + rng.int(30))).toString('base64').replace(/=/g, '')
      const value = rng.bytes(rng.int(100))
      expect(parseRankLine(`PUT ${id} ${key} ${toB64(value)}`)).toEqual({ kind: 'request', req: { id, op: 'put', key, value } })
      expect(parseRankLine(`GET ${id} ${key}`)).toEqual({ kind: 'request', req: { id, op: 'get', key } })
    }
  })
})

describe('fromB64: strict standard base64, whatever the size', () => {
  test('accepts exactly the padded quartet forms', () => {
    const good = ['', 'QQ==', 'QUI=', 'QUJD', 'QUJDQQ==']
    const bad = ['Q===', 'QQ=', 'Q', 'QQ=A', '====', 'QU JD', 'QUJD\n', 'QQ==QUJD', 'QUJ-', 'QUJ_']
    for (const s of good) expect(fromB64(s)).toEqual(new Uint8Array(Buffer.from(s, 'base64')))
    for (const s of bad) expect(fromB64(s)).toBeNull()
  })
  test('a 1 MiB value round-trips, and a stray byte anywhere in it is refused', () => {
    const rng = new Rng(7)
    const value = rng.bytes(MAX_VALUE)
    const text = toB64(value)
    expect(fromB64(text)).toEqual(value)
    for (const at of [0, 1, text.length >> 1, text.length - 3]) expect(fromB64(`${text.slice(0, at)}*${text.slice(at + 1)}`)).toBeNull()
  })
})

describe('AppServer fed garbage', () => {
  let dir: string
  let server: AppServer
  const path = () => join(dir, 'fz.sock')
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ompx-fz-'))
    const nop = () => {}
    server = await AppServer.listen({ path: path(), token: (r) => (r === 0 ? 'aa00' : undefined), restartDir: () => null, helloTimeoutMs: 500, events: { linked: nop, unlinked: nop, request: nop, prep: nop } })
  })
  afterAll(() => {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Send `data`, collect what comes back until the server closes or `ms` pass. */
  async function session(data: Uint8Array[], ms = 300): Promise<string> {
    let got = ''
    let done!: () => void
    const closed = new Promise<void>((r) => (done = r))
    const s = await Bun.connect({ unix: path(), socket: { data: (_s, d) => void (got += new TextDecoder().decode(d)), close: () => done(), error: () => done() } })
    for (const d of data) s.write(d)
    await Promise.race([closed, Bun.sleep(ms)])
    s.end()
    return got
  }

  test('garbage on 20 connections, then a good rank is still welcomed', async () => {
    const rng = new Rng(42)
    await Promise.all(Array.from({ length: 20 }, (_, i) => {
      const pre = i % 2 ? [enc.encode('HELLO 1 0 aa00 1\n')] : []
      return session([...pre, ...Array.from({ length: 5 }, () => mutate(rng, enc.encode(`${rng.pick(VALID)}\n`)))])
    }))
    for (let i = 0; i < 100 && server.linked(0); i++) await Bun.sleep(10) // the last closes being seen
    expect(server.linked(0)).toBe(false)
    expect(await session([enc.encode('HELLO 1 0 aa00 1\n')], 300)).toStartWith('WELCOME START\n')
  })
})
