/**
 * Snapshot transfers make big short-lived buffers that no pool can take back: zstd's output on
 * both ends (a fresh buffer per 4 MiB chunk), the socket's received data. JavaScriptCore counts
 * them against its heap only loosely and collects them late: `ompx run` receiving a 1 GiB
 * zstd checkpoint in-process peaked at ~350 MB, most of it dead chunks (issue #16). A full
 * collection of the JS heap of a runtime process takes a millisecond or two, so every 16 MiB a
 * transfer moves through this process, one is forced: memory stays bounded whatever the size.
 */

/** Transfer bytes between two forced collections: a 1 GiB checkpoint pays ~64 of them, ~1 ms each. */
const COLLECT_EVERY_BYTES = 16 * 1024 * 1024

let since = 0

/** Count `n` bytes of transfer buffers made or dropped here; collect once enough went by. */
export function transferGarbage(n: number): void {
  since += n
  if (since < COLLECT_EVERY_BYTES) return
  since = 0
  Bun.gc(true)
}
