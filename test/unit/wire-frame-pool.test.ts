/**
 * The big-frame pool (src/wire/frame-pool.ts): buffers come back and are reused, big ones are not
 * pooled; a received chunk's data is a view into its pooled body, and that body never takes
 * another frame while the chunk waits for its write (the FrameDecoder in src/wire/codec.ts).
 */
import { expect, test } from 'bun:test'
import { FrameDecoder, encodeFrame } from '../../src/wire/codec'
import { giveFrame, releaseBody, takeFrame } from '../../src/wire/frame-pool'
import type { Message } from '../../src/wire/messages'

test('a frame given back lends its buffer to the next one; a frame is given back once', () => {
  const a = takeFrame(4 * 1024 * 1024 + 100)
  expect(a.length).toBe(4 * 1024 * 1024 + 100)
  expect(giveFrame(a)).toBe(true)
  expect(giveFrame(a)).toBe(false) // twice: ignored, the buffer is not pooled twice
  const b = takeFrame(1000)
  const c = takeFrame(1000)
  expect(b.buffer).toBe(a.buffer)
  expect(c.buffer).not.toBe(a.buffer)
  giveFrame(b)
  giveFrame(c)
})

test('frames larger than a pool buffer, and foreign arrays, are left to the GC', () => {
  const big = takeFrame(8 * 1024 * 1024)
  expect(giveFrame(big)).toBe(false)
  expect(giveFrame(new Uint8Array(10))).toBe(false) // not ours: nothing happens
})

/** A snapshot chunk as the HNP receives it, `len` bytes of data filled with `fill`. */
function chunkFrame(fill: number, len = 4 * 1024 * 1024): Uint8Array {
  const data = new Uint8Array(len).fill(fill)
  const msg = { t: 'orted.file', jobid: 'j1', ref: 'r', seq: 1, rank: 0, path: 'f', offset: 0, data, codec: 'raw', last: false } as const
  const frame = encodeFrame(msg)
  const copy = frame.slice() // what the peer's socket delivers
  giveFrame(frame) // sent: the sender's pooled frame is free again
  return copy
}

/** Feed `frame` to `dec` in socket-sized pieces; the message it completes. */
function receive(dec: FrameDecoder, frame: Uint8Array, piece = 65536): Extract<Message, { t: 'orted.file' }> {
  const got: Message[] = []
  for (let i = 0; i < frame.length; i += piece) got.push(...dec.push(frame.slice(i, i + piece)))
  expect(got.length).toBe(1)
  return got[0] as Extract<Message, { t: 'orted.file' }>
}

test('a received chunk is a view into its pooled body, which is reused only once given back', () => {
  const dec = new FrameDecoder()
  const a = receive(dec, chunkFrame(1))
  const b = receive(dec, chunkFrame(2))
  // Not copied out of the body, and b did not take a's body: a is still waiting for the disk.
  expect(a.data.byteOffset).toBeGreaterThan(0)
  expect(a.data.buffer === b.data.buffer).toBe(false)
  expect(a.data.every((x) => x === 1)).toBe(true)
  expect(releaseBody(a.data)).toBe(true) // a is on disk
  expect(releaseBody(a.data)).toBe(false) // given back once
  const c = receive(dec, chunkFrame(3))
  expect(c.data.buffer === a.data.buffer).toBe(true) // a's body took the next chunk
  expect(b.data.every((x) => x === 2) && c.data.every((x) => x === 3)).toBe(true)
  releaseBody(b.data)
  releaseBody(c.data)
})

test('what is decoded out of a socket buffer is copied: the buffer may be reused', () => {
  const dec = new FrameDecoder()
  for (const len of [100, 2 * 1024 * 1024]) {
    const frame = chunkFrame(7, len)
    const got = dec.push(frame) as Extract<Message, { t: 'orted.file' }>[]
    frame.fill(0) // the transport reuses its buffer
    expect(got[0]!.data.every((x) => x === 7)).toBe(true)
    releaseBody(got[0]!.data)
  }
})
