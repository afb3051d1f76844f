/**
 * The job secret's form: 32 random bytes, carried as 64 hex digits (contact files, daemons'
 * environment). Apart from the handshake (auth.ts) so that a tool that only reads contact files
 * (`ompx ps` with no HNP running) does not load the wire codec with it (issue #16).
 */
import { ActionableError } from '../errors'

const SECRET_BYTES = 32

/** A new job secret: 32 random bytes as 64 hex digits (Web Crypto's RNG: node:crypto is slow to load). */
export function newSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(SECRET_BYTES))).toString('hex')
}

/** The key bytes of a hex secret. The message never echoes the value: it may be a real secret. */
export function parseSecret(secret: string | Uint8Array): Uint8Array {
  if (secret instanceof Uint8Array) {
    if (secret.length !== SECRET_BYTES) throw new ActionableError(`the job secret must be ${SECRET_BYTES} bytes, got ${secret.length}`)
    return secret
  }
  const hex = secret.trim()
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ActionableError(`the job secret must be ${SECRET_BYTES * 2} hex digits (got ${hex.length} characters)`)
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}
