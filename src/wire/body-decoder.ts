/**
 * MessagePack decoding with container lengths bounded by the body they come in. The decoder
 * pre-allocates an array as long as its header claims, so a 5-byte body declaring 16 million
 * elements (`dd 00 ff ff ff`) cost ~1.4 s and ~140 MB before failing, and fitted in an
 * unauthenticated handshake frame (found by test/unit/fuzz-wire.test.ts). Every element takes
 * at least one byte and every map entry two, so no honest body declares more elements than it
 * has bytes; a header that does fails at once with "Max length exceeded".
 *
 * Strings and binaries need no such limit: the decoder checks them against the bytes left.
 * One Decoder per power-of-two size bucket (the limit is at most twice the body's length),
 * created on first use, so a message costs no decoder construction.
 */
import type { Decoder } from '@msgpack/msgpack'
import { msgpack } from './msgpack'

/** Bodies up to 2^6 bytes share the smallest bucket. */
const MIN_BUCKET = 6
const decoders = new Map<number, Decoder>()

function bucketFor(length: number): number {
  let b = MIN_BUCKET
  while (2 ** b < length) b++
  return b
}

function decoderFor(length: number): Decoder {
  const b = bucketFor(length)
  let d = decoders.get(b)
  if (!d) {
    const limit = 2 ** b
    d = new (msgpack().Decoder)({ maxArrayLength: limit, maxMapLength: limit })
    decoders.set(b, d)
  }
  return d
}

/**
 * Decode one MessagePack value from `body`, refusing arrays and maps whose declared length
 * exceeds what a body of this size can hold. Throws what the decoder throws.
 */
export function decodeBounded(body: Uint8Array): unknown {
  return decoderFor(body.length).decode(body)
}

/** The container length limit a body of `length` bytes is decoded with (for tests). */
export function containerLimit(length: number): number {
  return 2 ** bucketFor(length)
}
