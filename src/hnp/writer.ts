/**
 * Ordered, asynchronous writes to a file descriptor. Bytes queued in one tick go out in one
 * write; `flush()` resolves when everything queued so far has been written, so `ompx run` can
 * exit without losing the last lines. Never blocks the event loop on a slow reader.
 */
import type { BunFile } from 'bun'

export class QueuedWriter {
  private parts: Uint8Array[] = []
  private size = 0
  private draining: Promise<void> | null = null

  constructor(private dest: BunFile) {}

  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.parts.push(bytes)
    this.size += bytes.length
    this.draining ??= this.drain()
  }

  private async drain(): Promise<void> {
    // Let the current burst of pipe reads queue up first: fewer, larger writes.
    await new Promise((r) => setImmediate(r))
    while (this.parts.length) {
      const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)
      this.parts = []
      this.size = 0
      try {
        await Bun.write(this.dest, buf)
      } catch {
        // Reader went away (EPIPE): output is undeliverable, the job itself goes on.
      }
    }
    this.draining = null
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining
  }
}
