/**
 * The handshake every connection starts with: mutual HMAC-SHA256 challenge-response over the
 * job secret, before any other message is accepted.
 *
 *   server -> client  hello   {v, nonce: Ns}                       (32 random bytes)
 *   client -> server  auth    {v, role, nonce: Nc, mac: HMAC(K, "ompx-c" | u32be(v) | u8(len role) | role | Ns | Nc)}
 *   server -> client  welcome {mac: HMAC(K, "ompx-s" | Nc | Ns)}   (or reject {reason})
 *
 * Fresh nonces on both sides defeat replay, and the distinct "ompx-c"/"ompx-s" labels stop one
 * side's MAC from being reflected as the other's. The secret itself never crosses the wire.
 */
import { ActionableError } from '../errors'
import { log } from '../log'
import { DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME, type FramedConn, type WireError } from './codec'
import { WIRE_PROTOCOL_VERSION, ROLES, type Message, type Role } from './messages'
import { refusals } from './refusals'

export const NONCE_BYTES = 32
export const DEFAULT_AUTH_TIMEOUT_MS = 5000

/**
 * Crypto comes from Bun's native HMAC and the Web Crypto RNG rather than node:crypto, whose
 * module alone adds ~7 MB to every launcher and daemon.
 */
function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n))
}

const enc = new TextEncoder()
function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = new Bun.CryptoHasher('sha256', key)
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

export function clientMac(key: Uint8Array, v: number, role: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  const head = new Uint8Array(4)
  new DataView(head.buffer).setUint32(0, v)
  const r = enc.encode(role)
  return hmac(key, enc.encode('ompx-c'), head, Uint8Array.of(r.length), r, serverNonce, clientNonce)
}

export function serverMac(key: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return hmac(key, enc.encode('ompx-s'), clientNonce, serverNonce)
}

/** Constant-time comparison: every byte is looked at whatever the first difference. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

export interface HandshakeOptions {
  /** Give up on a peer that has not completed the handshake by then (default 5 s). */
  timeoutMs?: number
  /** Frame limit once authenticated (before that it is HANDSHAKE_MAX_FRAME). */
  maxFrame?: number
}

export interface AcceptOptions extends HandshakeOptions {
  /** Roles allowed to connect; all by default. */
  roles?: readonly Role[]
}

/**
 * Server side. Resolves with the client's role once it proved the secret; otherwise rejects
 * the peer (reject message when it makes sense), closes, reports the refusal (at most one
 * warning line, escaped and rate-limited by `refusals`), and rejects.
 * On success the conn is left with no sink, queueing whatever the client already sent.
 */
export function acceptHandshake(fc: FramedConn, key: Uint8Array, opts: AcceptOptions = {}): Promise<Role> {
  const serverNonce = new Uint8Array(randomBytes(NONCE_BYTES))
  const roles = opts.roles ?? ROLES
  fc.decoder.maxFrame = HANDSHAKE_MAX_FRAME
  return new Promise((resolve, reject) => {
    let done = false
    const fail = (why: string, tellPeer?: string, quiet = false) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (tellPeer) fc.send({ t: 'reject', reason: tellPeer })
      fc.close()
      if (quiet) log.debug(`wire: ${fc.remote} left during the handshake`)
      else refusals.refused(fc.remote, why)
      reject(new Error(why))
    }
    const seconds = (opts.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS) / 1000
    const timer = setTimeout(() => fail(`no authentication within ${seconds} s`, 'authentication timeout'), opts.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS)
    fc.setSink({
      message(m: Message) {
        if (done) return
        if (m.t !== 'auth') return fail(`sent "${m.t}" before authenticating`, 'expected auth')
        if (m.v !== WIRE_PROTOCOL_VERSION) {
          return fail(`speaks wire protocol v${m.v}, we speak v${WIRE_PROTOCOL_VERSION}`, `protocol version ${m.v} not supported (this peer speaks ${WIRE_PROTOCOL_VERSION})`)
        }
        if (m.nonce.length !== NONCE_BYTES) return fail('bad client nonce', 'authentication failed')
        if (!macEqual(m.mac, clientMac(key, m.v, m.role, serverNonce, m.nonce))) {
          return fail('authentication failed (wrong job secret?)', 'authentication failed')
        }
        if (!roles.includes(m.role)) return fail(`role "${m.role}" is not accepted here`, `role ${m.role} not accepted`)
        done = true
        clearTimeout(timer)
        // Synchronously, before the next frame of this same chunk is decoded.
        fc.decoder.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME
        fc.setSink(null)
        fc.send({ t: 'welcome', mac: serverMac(key, m.nonce, serverNonce) })
        resolve(m.role)
      },
      protocolError: (err: WireError) => fail(err.message, 'malformed handshake'),
      ended: () => fail('closed during the handshake', undefined, true),
    })
    fc.send({ t: 'hello', v: WIRE_PROTOCOL_VERSION, nonce: serverNonce })
  })
}

/**
 * Client side: answer the challenge, then check the server's proof, so a tool never talks to
 * an impostor. Rejects with an ActionableError saying what went wrong; closes on failure.
 */
export function initiateHandshake(fc: FramedConn, key: Uint8Array, role: Role, uri: string, opts: HandshakeOptions = {}): Promise<void> {
  const clientNonce = new Uint8Array(randomBytes(NONCE_BYTES))
  const timeoutMs = opts.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS
  let serverNonce: Uint8Array | null = null
  fc.decoder.maxFrame = HANDSHAKE_MAX_FRAME
  return new Promise((resolve, reject) => {
    let done = false
    const fail = (why: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      fc.close()
      reject(new ActionableError(`${uri}: ${why}`))
    }
    const timer = setTimeout(() => fail(`no handshake within ${timeoutMs / 1000} s (is an ompx HNP listening there?)`), timeoutMs)
    fc.setSink({
      message(m: Message) {
        if (done) return
        if (m.t === 'reject') return fail(`refused us: ${m.reason}${/authentication failed/.test(m.reason) ? ' (wrong job secret?)' : ''}`)
        if (!serverNonce) {
          if (m.t !== 'hello') return fail(`sent "${m.t}" instead of a hello; not an ompx peer?`)
          if (m.v !== WIRE_PROTOCOL_VERSION) return fail(`speaks wire protocol v${m.v}, this ompx speaks v${WIRE_PROTOCOL_VERSION}; use matching ompx versions`)
          if (m.nonce.length !== NONCE_BYTES) return fail('sent a malformed hello')
          serverNonce = m.nonce
          fc.send({ t: 'auth', v: WIRE_PROTOCOL_VERSION, role, nonce: clientNonce, mac: clientMac(key, WIRE_PROTOCOL_VERSION, role, serverNonce, clientNonce) })
          return
        }
        if (m.t !== 'welcome') return fail(`sent "${m.t}" instead of a welcome`)
        if (!macEqual(m.mac, serverMac(key, clientNonce, serverNonce))) {
          return fail('the server failed to prove it knows the job secret; not talking to it')
        }
        done = true
        clearTimeout(timer)
        fc.decoder.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME
        fc.setSink(null)
        resolve()
      },
      protocolError: (err: WireError) => fail(`protocol error during the handshake: ${err.message}`),
      ended: () => fail('closed the connection during the handshake'),
    })
  })
}
