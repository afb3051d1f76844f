/**
 * Hostile peers against the live HNP of a running multi-node job (its URI from the contact
 * file): a wrong secret, garbage bytes, a huge length prefix, an empty frame, an undecodable
 * body, a message before auth, a silent peer. Each is dropped by the HNP, and the job still
 * completes with the right output; `ompx ps` keeps working.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clientMac } from '../../src/wire/auth'
import { newSecret, parseSecret } from '../../src/wire/secret'
import { FrameDecoder, encodeFrame } from '../../src/wire/codec'
import type { Message } from '../../src/wire/messages'
import { guardLeftovers, lines, ompx, spawnOmpx } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-wire-auth-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const env = { TMPDIR: tmp }

/** A raw TCP peer: everything it received (decoded as frames when possible) and when it closed. */
interface RawPeer {
  send(bytes: Uint8Array | string): void
  frames: Message[]
  closed: Promise<number>
  end(): void
}

async function rawPeer(uri: string): Promise<RawPeer> {
  const m = /^tcp:\/\/([\d.]+):(\d+)$/.exec(uri)
  if (!m || !m[1]!.startsWith('127.')) throw new Error(`unexpected HNP uri ${uri}`)
  const frames: Message[] = []
  const decoder = new FrameDecoder(1 << 20)
  const t0 = performance.now()
  let onClose!: (ms: number) => void
  const closed = new Promise<number>((r) => (onClose = r))
  const sock = await Bun.connect({
    hostname: m[1]!,
    port: Number(m[2]),
    socket: {
      data(_s, b) {
        try {
          frames.push(...decoder.push(new Uint8Array(b)))
        } catch {}
      },
      close: () => onClose(performance.now() - t0),
      error: () => onClose(performance.now() - t0),
    },
  })
  return { send: (b) => void sock.write(b), frames, closed, end: () => sock.terminate() }
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, Bun.sleep(ms).then(() => Promise.reject(new Error(`${what}: not closed within ${ms} ms`)))])

async function waitHello(peer: RawPeer): Promise<Message & { t: 'hello' }> {
  for (let i = 0; i < 100 && !peer.frames.length; i++) await Bun.sleep(20)
  const hello = peer.frames[0]
  expect(hello?.t).toBe('hello')
  return hello as Message & { t: 'hello' }
}

const header = (n: number) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

/**
 * Start a 2-node job whose ranks wait for a gate file, run `attack` against its HNP, then check
 * that the HNP still answers `ompx ps`, the job completes with the right output, and the HNP's
 * stderr has at most one line per hostile peer and never the secret.
 */
async function underAttack(attack: (open: () => Promise<RawPeer>) => Promise<void>): Promise<void> {
  const gate = join(tmp, `gate-${Math.random().toString(36).slice(2)}`)
  const job = spawnOmpx(
    ['run', '--launcher', 'local', '-H', 'n1:2,n2:2', '-np', '4',
      'sh', '-c', `echo "up $OMPX_RANK"; while [ ! -e ${gate} ]; do sleep 0.05; done; echo "done $OMPX_RANK $OMPX_NODE"`],
    { env, timeoutMs: 50_000 },
  )
  const peers: RawPeer[] = []
  try {
    for (let r = 0; r < 4; r++) await job.waitFor(new RegExp(`^up ${r}$`), 20_000)
    const dir = join(tmp, readdirSync(tmp).find((n) => n.startsWith('ompx-'))!)
    const contact = JSON.parse(readFileSync(join(dir, `hnp-${job.pid}.json`), 'utf8'))
    await attack(async () => {
      const p = await rawPeer(contact.uri)
      peers.push(p)
      return p
    })
    const ps = await ompx(['ps', '--json', String(job.pid)], { env, timeoutMs: 15_000 })
    expect(ps.stderr).toBe('')
    expect(ps.code).toBe(0)
    const procs = JSON.parse(ps.stdout).jobs[0].procs as { state: string }[]
    expect(procs.map((p) => p.state)).toEqual(['running', 'running', 'running', 'running'])
    writeFileSync(gate, '')
    const r = await job.done()
    expect(r.code).toBe(0)
    expect(lines(r.stdout).sort()).toEqual(['done 0 n1', 'done 1 n1', 'done 2 n2', 'done 3 n2', 'up 0', 'up 1', 'up 2', 'up 3'])
    expect(r.stderr).not.toContain(contact.secret)
    expect(r.stderr).not.toMatch(/^\s+at\s/m)
    expect(lines(r.stderr).length).toBeLessThanOrEqual(peers.length)
    for (const l of lines(r.stderr)) expect(l).toMatch(/wire: .*127\.0\.0\.1:\d+/)
  } finally {
    writeFileSync(gate, '')
    for (const p of peers) p.end()
    job.signal('SIGKILL')
  }
}

describe('hostile peers against a live HNP are dropped; the job is unharmed', () => {
  test('wrong secret: a well-formed auth with a MAC from another key gets reject, then close', async () => {
    await underAttack(async (open) => {
      const wrong = await open()
      const hello = await waitHello(wrong)
      const nonce = crypto.getRandomValues(new Uint8Array(32))
      const mac = clientMac(parseSecret(newSecret()), 1, 'tool', hello.nonce, nonce)
      wrong.send(encodeFrame({ t: 'auth', v: 1, role: 'tool', nonce, mac }))
      await within(wrong.closed, 3000, 'wrong secret')
      expect(wrong.frames.map((f) => f.t)).toEqual(['hello', 'reject'])
    })
  })

  test('garbage: an HTTP request, a zero-length frame, an undecodable body', async () => {
    await underAttack(async (open) => {
      const http = await open()
      http.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n') // its first 4 bytes read as a ~1.2 GB length
      await within(http.closed, 3000, 'HTTP garbage')
      const empty = await open()
      empty.send(header(0))
      await within(empty.closed, 3000, 'zero-length frame')
      const junk = await open()
      junk.send(new Uint8Array([...header(4), 0xc1, 0xc1, 0xc1, 0xc1])) // 0xc1 is never valid MessagePack
      await within(junk.closed, 3000, 'undecodable body')
    })
  })

  test('a length prefix of 0xFFFFFFFF is refused from the header alone', async () => {
    await underAttack(async (open) => {
      const huge = await open()
      huge.send(header(0xffffffff))
      await within(huge.closed, 3000, 'length 0xFFFFFFFF')
      expect(huge.frames.some((f) => f.t === 'welcome')).toBe(false)
    })
  })

  test('a valid message before auth (tool.ps) gets no answer and is dropped', async () => {
    await underAttack(async (open) => {
      const early = await open()
      await waitHello(early)
      early.send(encodeFrame({ t: 'tool.ps' }))
      await within(early.closed, 3000, 'tool.ps before auth')
      expect(early.frames.some((f) => f.t === 'hnp.ps')).toBe(false)
    })
  })

  test('a hundred connections of random bytes at once', async () => {
    await underAttack(async (open) => {
      const flood = await Promise.all(Array.from({ length: 100 }, () => open()))
      for (const p of flood) p.send(crypto.getRandomValues(new Uint8Array(64)))
      await within(Promise.all(flood.map((p) => p.closed)), 8000, 'random-bytes flood')
    })
  })

  test('a silent peer is cut after the authentication deadline (5 s)', async () => {
    await underAttack(async (open) => {
      const silent = await open()
      const ms = await within(silent.closed, 12_000, 'silent peer')
      expect(ms).toBeGreaterThan(3000)
    })
  })
})
