/** The big-frame pool (src/wire/frame-pool.ts): buffers come back and are reused, big ones are not pooled. */
import { expect, test } from 'bun:test'
import { giveFrame, takeFrame } from '../../src/wire/frame-pool'

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
