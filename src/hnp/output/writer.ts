/**
 * Ordered, asynchronous writes to a file descriptor. Bytes queued in one tick go out together;
 * `flush()` resolves when everything queued so far has been written, so `ompx run` can exit
 * without losing the last lines. Never blocks the event loop on a slow reader; `ready()` is the
 * back-pressure: past BACKLOG_BYTES queued, the ranks' output waits (docs/wire.md, "Priority").
 *
 * Why not Bun.write(Bun.stdout): under a fast pipe reader it was seen re-sending part of a
 * buffer after a partial write (duplicated and torn lines). Here every partial write advances
 * an explicit offset, and EAGAIN on a non-blocking pipe just waits and retries.
 */
import { write } from 'node:fs'

function writeOnce(fd: number, buf: Uint8Array, offset: number): Promise<number> {
  return new Promise((resolve, reject) =>
    write(fd, buf, offset, buf.length - offset, null, (err, n) => (err ? reject(err) : resolve(n))),
  )
}

export async function writeAll(fd: number, buf: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < buf.length) {
    try {
      offset += await writeOnce(fd, buf, offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      await Bun.sleep(1)
    }
  }
}

/** Bytes queued for a slow reader before producers are asked to wait (`ready()`). */
export const BACKLOG_BYTES = 4 * 1024 * 1024

export class QueuedWriter {
  private parts: Uint8Array[] = []
  private size = 0
  /** Bytes queued or being written. */
  private backlog = 0
  private readyWaiters: (() => void)[] = []
  private draining: Promise<void> | null = null
  private broken = false

  /** Called once when the reader has gone away (EPIPE): nothing more can be delivered. */
  onBroken: () => void = () => {}

  constructor(private fd: number) {}

  /** `bytes` becomes ours: callers pass buffers they do not reuse (stream chunks, fresh encodes). */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.broken) return
    this.parts.push(bytes)
    this.size += bytes.length
    this.backlog += bytes.length
    this.draining ??= this.drain()
  }

  /** Undefined while the backlog is small; else a promise that resolves once it is (or output broke). */
  ready(): Promise<void> | undefined {
    if (this.backlog < BACKLOG_BYTES || this.broken) return undefined
    return new Promise((resolve) => this.readyWaiters.push(resolve))
  }

  private settle(written: number): void {
    this.backlog -= written
    if (this.readyWaiters.length && (this.backlog < BACKLOG_BYTES || this.broken)) for (const w of this.readyWaiters.splice(0)) w()
  }

  private async drain(): Promise<void> {
    // Let the current burst of pipe reads queue up first: fewer, larger writes.
    await new Promise((r) => setImmediate(r))
    while (this.parts.length) {
      const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)
      this.parts = []
      this.size = 0
      try {
        await writeAll(this.fd, buf)
        this.settle(buf.length)
      } catch {
        // Reader went away (EPIPE): output is undeliverable from now on.
        this.broken = true
        this.parts = []
        this.backlog = 0
        this.settle(0)
        this.onBroken()
      }
    }
    this.draining = null
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining
  }
}
