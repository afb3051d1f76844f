/**
 * Terminal and stderr plumbing that every role loads at start-up, kept cheap on purpose: touching
 * `process.stdout` or `process.stderr` builds Node's stream stack (node:stream, node:events),
 * about 20 ms of CPU at every start of every role (measured with `perf stat` on the compiled
 * binary, issue #16), so neither is touched unless a role really streams.
 *
 * NO_COLOR: citty and consola decide on colours from the environment; when our stdout is not a
 * terminal the escape codes only pollute logs and pipes. main.ts takes it back out so ranks never
 * inherit it.
 */
const ttyWrap = (process as unknown as { binding(name: 'tty_wrap'): { isTTY(fd: number): boolean } }).binding('tty_wrap')
export const setNoColor = !ttyWrap.isTTY(1) && process.env.NO_COLOR === undefined
if (setNoColor) process.env.NO_COLOR = '1'

let viaStream = false
/**
 * Write to stderr synchronously (lines of one process stay in order and are out before an exit).
 * A non-blocking stderr that is full (EAGAIN) switches this process to the stream for good, so
 * the order still holds.
 */
export function writeStderr(text: string): void {
  if (!viaStream) {
    // node:fs on first use: `ompx version` never loads it.
    const { writeSync } = require('node:fs') as typeof import('node:fs')
    const bytes = Buffer.from(text)
    let done = 0
    try {
      while (done < bytes.length) done += writeSync(2, bytes, done)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return
      viaStream = true
      process.stderr.write(bytes.subarray(done))
      return
    }
  }
  process.stderr.write(text)
}
