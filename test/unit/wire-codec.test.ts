/** Framing and message validation: round trips, split/merged frames, and every way a frame can be bad. */
import { describe, expect, test } from 'bun:test'
import { encode } from '@msgpack/msgpack'
import { FrameDecoder, WireError, decodeBody, encodeFrame } from '../../src/wire/codec'
import { CATALOG, validateMessage, type Message } from '../../src/wire/messages'

const packr = { pack: (v: unknown) => encode(v) }
/** A frame around arbitrary bytes, bypassing encodeFrame's validation. */
function rawFrame(body: Uint8Array): Uint8Array {
  const f = new Uint8Array(4 + body.length)
  new DataView(f.buffer).setUint32(0, body.length)
  f.set(body, 4)
  return f
}
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]))

const proc = { rank: 0, app: 0, node: 'n1', localRank: 0, localSize: 1, nodeRank: 0, argv: ['./a', 'x'], cwd: '/tmp', appEnv: { A: '1' }, stdin: true }
const store = { sstore: 'central', globalDir: '/s', ref: 'ompx_global_snapshot_1.1.ckpt', seq: 2, crs: 'self' }
const SAMPLES: Message[] = [
  { t: 'hello', v: 1, nonce: new Uint8Array(32).fill(7) },
  { t: 'auth', v: 1, role: 'tool', nonce: new Uint8Array(32), mac: new Uint8Array(32).fill(1) },
  { t: 'welcome', mac: new Uint8Array(32) },
  { t: 'reject', reason: 'no' },
  { t: 'orted.register', node: 'n1', pid: 12, version: '0.1.0', address: '127.0.1.2' },
  { t: 'orted.launched', jobid: '1.1', pids: [[0, 100], [1, 101]] },
  { t: 'orted.output', jobid: '1.1', rank: 1, stream: 'stderr', data: new TextEncoder().encode('héllo\n') },
  { t: 'orted.exit', jobid: '1.1', rank: 0, pid: 100, node: 'n1', code: null, signal: 'SIGTERM' },
  { t: 'orted.error', message: 'boom' },
  { t: 'orted.error', jobid: '1.1', message: 'boom' },
  { t: 'hnp.launch', jobid: '1.1', procs: [proc], size: 1, universeSize: 1 },
  { t: 'hnp.signal', jobid: '1.1', signal: 'SIGINT', ranks: [0, 2] },
  { t: 'hnp.stdin', jobid: '1.1', rank: 0, data: null },
  { t: 'hnp.kill-job', jobid: '1.1' },
  { t: 'hnp.job-end', jobid: '1.1' },
  { t: 'hnp.shutdown' },
  { t: 'ping', seq: 3 },
  { t: 'pong', seq: 3 },
  { t: 'tool.ps' },
  {
    t: 'hnp.ps',
    hnp: { pid: 1, uri: 'tcp://127.0.0.1:1', started: 5, nodes: ['n1'] },
    jobs: [{ jobid: '1.1', app: './a', state: 'running', started: 6, procs: [{ rank: 0, node: 'n1', pid: null, state: 'launching', startedAt: null }] }],
  },
  {
    t: 'tool.submit',
    apps: [{ np: 2, argv: ['x'], env: {}, cwd: '/' }, { argv: ['y'], env: { B: '2' }, cwd: '/tmp' }],
    options: { mapBy: 'node', oversubscribe: false, errmgrContinue: false, displayMap: true },
  },
  { t: 'hnp.submitted', jobid: '1.2', ranks: 3 },
  { t: 'hnp.notice', jobid: '1.2', text: 'hi' },
  { t: 'tool.signal', jobid: '1.2', signal: 'SIGTERM' },
  { t: 'hnp.job-exit', jobid: '1.2', status: 0 },
  { t: 'tool.stop' },
  { t: 'hnp.launch', jobid: '1.3', procs: [{ ...proc, restart: { dir: '/s/0/rank_0', staged: false }, crs: 'self' }], size: 1, universeSize: 1, pmi: { mode: 'port', processMapping: '(vector,(0,1,1))' } },
  { t: 'hnp.ckpt', jobid: '1.1', op: 'prep', store, ranks: [0, 1], options: ['term'] },
  { t: 'hnp.ckpt', jobid: '1.1', op: 'release', store, ranks: [0, 1], options: [], text: 'continue' },
  { t: 'orted.ckpt', jobid: '1.1', rank: 1, seq: 2, op: 'prep', status: 'stall' },
  {
    t: 'orted.ckpt',
    jobid: '1.1',
    rank: 1,
    seq: 2,
    op: 'captured',
    status: 'ok',
    snapshot: { rank: 1, node: 'n2', crs: 'self', files: [{ path: 'state.bin', size: 3, sum: 'crc32:0000abcd' }], bytes: 3, captureMs: 4, info: { v: '1' } },
  },
  { t: 'orted.app', jobid: '1.1', rank: 0, id: 7, op: 'put', key: 'k', value: new Uint8Array([1, 2]) },
  { t: 'hnp.app', jobid: '1.1', rank: 0, id: 7, ok: true, text: '2 ompx_global_snapshot_1.1.ckpt' },
  { t: 'orted.app-link', jobid: '1.1', rank: 0, up: true },
  { t: 'orted.fence', jobid: '1.1', seq: 0, ranks: [0, 1], kv: [['card-0', 'x y']] },
  { t: 'hnp.fence', jobid: '1.1', seq: 0, ok: true, kv: [['card-0', 'x'], ['card-1', 'y']] },
  { t: 'orted.abort', jobid: '1.1', rank: 1, code: 7, message: 'rank 1 called MPI_Abort' },
  { t: 'orted.dpm', jobid: '1.1', rank: 0, id: 1, op: 'spawn', spawn: { apps: [{ np: 2, argv: ['./child', 'a b'], info: [['host', 'n2']] }], preput: [['PARENT_ROOT_PORT_NAME', 'tag#0$']] } },
  { t: 'hnp.dpm', jobid: '1.1', rank: 0, id: 1, ok: true, value: '1.2' },
  { t: 'orted.file', jobid: '1.1', ref: 'r', seq: 0, rank: 1, path: 'a/b', offset: 0, data: new Uint8Array(3), codec: 'zstd', last: true },
  { t: 'hnp.file', jobid: '1.1', rank: 1, path: 'a', offset: 4, data: new Uint8Array(1), codec: 'raw', last: false },
  { t: 'tool.checkpoint', jobid: '1.1', term: false, stop: true, status: true },
  { t: 'hnp.ckpt-status', jobid: '1.1', state: 'Running', ref: 'r', seq: -1, elapsed: 12.5 },
  { t: 'hnp.ckpt-done', jobid: '1.1', ref: 'r', seq: 0, dir: '/s', bytes: 10, timing: { running: 1 } },
  { t: 'tool.snapshots' },
  { t: 'hnp.snapshots', jobid: '1.1', ref: 'r', dir: '/s', crs: 'self' },
  { t: 'tool.migrate', ranks: [2, 5], off: [], onto: ['n3'], hold: false, keepImages: false, status: true, verbose: false },
  { t: 'hnp.migrate-status', jobid: '1.1', state: 'Moving', elapsed: 1.5 },
  {
    t: 'hnp.migrate-done',
    jobid: '1.1',
    moves: [{ rank: 2, from: 'n1', to: 'n3', oldPid: 10, newPid: 20, bytes: 4096, downtimeMs: 80 }],
    bytes: 4096,
    totalMs: 120,
    timing: { capture: 30 },
  },
  { t: 'error', message: 'nope' },
]

describe('codec round trip', () => {
  test('every catalog type has a sample', () => {
    expect(new Set<string>(SAMPLES.map((m) => m.t))).toEqual(new Set(Object.keys(CATALOG)))
  })

  test.each(SAMPLES.map((m) => [m.t, m] as const))('%s', (_t, msg) => {
    const got = new FrameDecoder().push(encodeFrame(msg))
    expect(got).toEqual([msg])
  })

  test('byte fields decode as Uint8Array that do not alias the receive buffer', () => {
    const frame = encodeFrame({ t: 'orted.output', jobid: 'j', rank: 0, stream: 'stdout', data: Uint8Array.of(1, 2, 3) })
    const [m] = new FrameDecoder().push(frame) as [Extract<Message, { t: 'orted.output' }>]
    frame.fill(0)
    expect(m.data).toBeInstanceOf(Uint8Array)
    expect([...m.data]).toEqual([1, 2, 3])
  })

  test('an optional field sent as undefined arrives absent', () => {
    const [m] = new FrameDecoder().push(encodeFrame({ t: 'hnp.signal', jobid: 'j', signal: 'SIGINT', ranks: undefined }))
    expect(m).toEqual({ t: 'hnp.signal', jobid: 'j', signal: 'SIGINT' })
    expect('ranks' in m!).toBe(false)
  })

  test('encodeFrame refuses a malformed message', () => {
    expect(() => encodeFrame({ t: 'ping', seq: 'x' } as unknown as Message)).toThrow(/ping.seq must be a number/)
  })
})

describe('stream reassembly', () => {
  const msgs = SAMPLES.slice(0, 8)
  const stream = concat(...msgs.map(encodeFrame))

  test('many frames in one chunk', () => expect(new FrameDecoder().push(stream)).toEqual(msgs))

  test('one byte at a time', () => {
    const d = new FrameDecoder()
    const out: Message[] = []
    for (const b of stream) out.push(...d.push(Uint8Array.of(b)))
    expect(out).toEqual(msgs)
    expect(d.partial).toBe(false)
  })

  test('random chunk boundaries', () => {
    for (let trial = 0; trial < 20; trial++) {
      const d = new FrameDecoder()
      const out: Message[] = []
      for (let i = 0; i < stream.length; ) {
        const n = 1 + Math.floor(Math.random() * 40)
        out.push(...d.push(stream.subarray(i, i + n)))
        i += n
      }
      expect(out).toEqual(msgs)
    }
  })

  test('a 10 MB message in 64 KiB chunks', () => {
    const data = new Uint8Array(10 * 1024 * 1024)
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251
    const frame = encodeFrame({ t: 'orted.output', jobid: 'j', rank: 0, stream: 'stdout', data })
    const d = new FrameDecoder()
    const out: Message[] = []
    for (let i = 0; i < frame.length; i += 65536) out.push(...d.push(frame.subarray(i, i + 65536)))
    expect(out).toHaveLength(1)
    expect(Buffer.compare((out[0] as { data: Uint8Array }).data, data)).toBe(0)
  })

  test('partial is true mid-frame', () => {
    const d = new FrameDecoder()
    d.push(stream.subarray(0, 6))
    expect(d.partial).toBe(true)
  })
})

describe('bad frames', () => {
  const bad = (bytes: Uint8Array, re: RegExp, max?: number) => {
    const d = new FrameDecoder(max)
    let err: unknown
    try {
      d.push(bytes)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(WireError)
    expect((err as Error).message).toMatch(re)
    // A failed decoder stays failed, even for good input.
    expect(() => d.push(encodeFrame({ t: 'tool.ps' }))).toThrow(WireError)
  }

  test('an oversized length prefix is refused from the 4 header bytes alone', () => {
    bad(Uint8Array.of(0xff, 0xff, 0xff, 0xff), /frame of 4096 MiB exceeds the 64 MiB limit/)
    bad(rawFrame(new Uint8Array(2000)).subarray(0, 4), /frame of 2000 bytes exceeds the 1000 bytes limit/, 1000)
  })
  test('empty frame', () => bad(Uint8Array.of(0, 0, 0, 0), /empty frame/))
  test('garbage body', () => bad(rawFrame(new TextEncoder().encode('GET / HTTP/1.1')), /undecodable|not a message/))
  test('truncated msgpack', () => bad(rawFrame(Uint8Array.of(0x92, 1)), /undecodable/))
  test('not a map', () => bad(rawFrame(packr.pack(42)), /not a message/))
  test('no t', () => bad(rawFrame(packr.pack({ seq: 1 })), /not a message/))
  test('unknown type', () => bad(rawFrame(packr.pack({ t: 'nope' })), /unknown message type "nope"/))
  test('missing field', () => bad(rawFrame(packr.pack({ t: 'ping' })), /ping\.seq is missing/))
  test('wrong field type', () => bad(rawFrame(packr.pack({ t: 'orted.exit', jobid: 'j', rank: 0, pid: 1, node: 'n', code: 'x', signal: null })), /code must be a number/))
  test('wrong nested type', () => {
    bad(rawFrame(packr.pack({ t: 'hnp.launch', jobid: 'j', procs: [{ ...proc, argv: [1] }] })), /hnp\.launch\.procs\[0\]\.argv\[0\] must be a string/)
  })
  test('string where bytes are expected', () => bad(rawFrame(packr.pack({ t: 'welcome', mac: 'abc' })), /welcome\.mac must be bytes/))
  test('bad enum', () => bad(rawFrame(packr.pack({ t: 'auth', v: 1, role: 'root', nonce: new Uint8Array(1), mac: new Uint8Array(1) })), /role must be one of/))

  test('decodeBody does not quote the payload in its error', () => {
    const body = concat(packr.pack({ t: 'x', secret: 'deadbeef' }), Uint8Array.of(0xc0))
    expect(() => decodeBody(body)).toThrow(WireError)
    try {
      decodeBody(body)
    } catch (e) {
      expect((e as Error).message).not.toContain('deadbeef')
    }
  })

  test('validateMessage names the problem', () => {
    expect(validateMessage({ t: 'orted.output', jobid: 'j', rank: 0, stream: 'both', data: new Uint8Array() })).toMatch(/stream must be one of stdout\|stderr/)
    expect(validateMessage({ t: 'orted.launched', jobid: 'j', pids: [[1]] })).toMatch(/pids\[0\] must be a pair/)
    expect(validateMessage({ t: 'hnp.launch', jobid: 'j', procs: [{ ...proc, appEnv: { A: 1 } }], size: 1, universeSize: 1 })).toMatch(/appEnv\.A must be a string/)
  })
})
