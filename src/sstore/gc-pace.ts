/**
 * Big transient buffers (the chunks of a snapshot transfer: 4-8 MiB each, read, framed, sent,
 * dropped) live outside the JS heap, and JavaScriptCore does not weigh them enough to collect
 * them soon: a 1 GiB stage checkpoint left ~400 MB of dead chunks in a process before the next
 * collection. So every module that makes such buffers reports their bytes here, and after every
 * 64 MiB a collection is requested (Bun.gc(false): asynchronous, it does not stop the transfer).
 */
const EVERY_BYTES = 64 * 1024 * 1024

let since = 0

export function noteTransientBytes(bytes: number): void {
  since += bytes
  if (since < EVERY_BYTES) return
  since = 0
  Bun.gc(false)
}
