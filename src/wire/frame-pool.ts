/**
 * Reusable buffers for big frames (snapshot chunks, ~4 MiB each). A fresh buffer per chunk is
 * garbage the moment the kernel has copied it, and JavaScriptCore collects such big buffers
 * late: a daemon sending 1 GiB of images sat on 100-200 MB of dead frames. encodeFrame takes
 * its big frames from here; the connection that sent one gives it back once the kernel has all
 * of its bytes (SocketConn). A frame nobody gives back is simply collected as before.
 * Received snapshot chunks work the same way (takeBody / releaseBody): without it the HNP sat on
 * 300-380 MB of dead 4 MiB bodies while receiving a 1 GiB checkpoint (issue #16).
 * What no pool can take back is Bun's buffer per socket read; see socketBytes.
 */

/** Room for a 4 MiB chunk, its message fields and a little zstd expansion. */
const FRAME_CAPACITY = 4 * 1024 * 1024 + 64 * 1024
/**
 * At most this many idle buffers are kept (32 MiB, only as many as were ever in use at once): a
 * channel queues two chunks, a third is being encoded; a receiver holds the chunks of every rank
 * waiting for the disk (up to 8 MiB each) as views into their bodies.
 */
const MAX_IDLE = 8

const idle: Uint8Array[] = []
/** The pooled buffer behind each frame handed out (frames are views of it). */
const owners = new WeakMap<Uint8Array, Uint8Array>()

/** A frame of `n` bytes: pooled when it fits a pool buffer, otherwise a plain allocation. */
export function takeFrame(n: number): Uint8Array {
  if (n > FRAME_CAPACITY) return new Uint8Array(n)
  const base = idle.pop() ?? new Uint8Array(FRAME_CAPACITY)
  const frame = base.subarray(0, n)
  owners.set(frame, base)
  return frame
}

/** Pooled buffers behind received frame bodies, by their memory (a body's views share it). */
const bodies = new WeakMap<ArrayBufferLike, Uint8Array>()

/**
 * A buffer for a received frame body of `n` bytes (FrameDecoder, big frames only). Any view
 * of it (the chunk data msgpack decodes out of it) gives it back through releaseBody.
 */
export function takeBody(n: number): Uint8Array {
  if (n > FRAME_CAPACITY) return new Uint8Array(n)
  const base = idle.pop() ?? new Uint8Array(FRAME_CAPACITY)
  bodies.set(base.buffer, base)
  return base.subarray(0, n)
}

/**
 * Nothing uses the received body that `view` is part of any more (its chunk is on disk): the
 * buffer may hold the next frame. False when it was not a pooled body (or was given back).
 */
export function releaseBody(view: Uint8Array): boolean {
  const base = bodies.get(view.buffer)
  if (!base) return false
  bodies.delete(view.buffer)
  if (idle.length < MAX_IDLE) idle.push(base)
  return true
}

/**
 * `frame` (as takeFrame returned it) is no longer used by anyone: its buffer may be reused.
 * False when there was nothing to give back (not a pooled frame, or given back already).
 */
export function giveFrame(frame: Uint8Array): boolean {
  const base = owners.get(frame)
  if (!base) return false
  owners.delete(frame)
  if (idle.length < MAX_IDLE) idle.push(base)
  return true
}

/**
 * Transfer bytes between two forced collections: 64 per GiB, ~1 ms each, as everything big is
 * pooled and little is left to free. Control traffic (KBs per job) never gets there.
 */
const COLLECT_EVERY_BYTES = 32 * 1024 * 1024
let sinceCollect = 0

/**
 * Count `n` bytes written to or read from a socket. Bun allocates a buffer per read, garbage once
 * the frame decoder has copied it into a body, and JavaScriptCore frees such buffers late: without
 * a collection now and then, `ompx run` receiving a 1 GiB checkpoint from a daemon peaked at
 * ~180 MB and the daemon sending it (zstd) at ~200 MB (issue #16).
 */
export function socketBytes(n: number): void {
  sinceCollect += n
  if (sinceCollect < COLLECT_EVERY_BYTES) return
  sinceCollect = 0
  Bun.gc(true)
}
