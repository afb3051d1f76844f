/**
 * What a socket receives arrives in buffers Bun allocates per read, garbage once the frame
 * decoder has copied them into a frame body; sending leaves smaller garbage behind. JavaScriptCore
 * counts such buffers against its heap only loosely and collects them late: without help,
 * `ompx run` receiving a 1 GiB checkpoint from a daemon peaked at ~180 MB and the daemon sending
 * it (zstd) at ~200 MB (issue #16). Everything big a transfer uses is pooled (frame-pool.ts,
 * the stage store's read and zstd buffers), so a collection has little to free and takes about
 * a millisecond: one is forced every 32 MiB that go through this process's sockets, 64 per GiB.
 * Control traffic (KBs per job) never gets there.
 */

const COLLECT_EVERY_BYTES = 32 * 1024 * 1024

let since = 0

/** Count `n` bytes written to or read from a socket; collect once enough went by. */
export function socketGarbage(n: number): void {
  since += n
  if (since < COLLECT_EVERY_BYTES) return
  since = 0
  Bun.gc(true)
}
