/**
 * When a rank has ended, as its node daemon decides it: from the process's exit, not from EOF on
 * its pipes. A background child that inherited stdout/stderr (`sh -c 'sleep 12 & exit 3'`, or the
 * program of an `ompx shim` that was SIGKILLed) would otherwise hold the pipes open and hide the
 * exit for as long as it lives, and keep running after it.
 *
 * Order of events once the process exited:
 *  1. up to EXIT_GRACE_MS for EOF on both pipes: what the rank wrote before it exited is read and
 *     forwarded first (a pipe holds at most its capacity, read in microseconds);
 *  2. RankProcess.cleanup(): whatever the rank left in its process group is killed, so the pipes
 *     close unless a process left the group (setsid) and still holds them;
 *  3. up to DRAIN_MS more for that EOF (everything already in the pipes comes before it);
 *  4. the readers are cancelled: what a process that escaped the group writes later is dropped.
 * Only then is the exit reported, so a rank's output always reaches the HNP before its exit.
 *
 * While the rank runs, `forward` may ask to wait (back-pressure, NodeJobEvents.output): its pipe
 * is then not read, so a rank writing faster than its output is delivered blocks in write(2).
 * Once the process exited nobody waits any more: what is left in its pipes is read at once, so
 * the grace periods above are not spent waiting for a slow reader and nothing it wrote is lost.
 */
import type { RankProcess, RankProcessExit } from '../runtime/rank-process'

/** How long an exited rank's pipes may stay open before what it left behind is killed. */
export const EXIT_GRACE_MS = 200
/** After that kill: how long EOF may still take (output in flight, or an escaped holder). */
export const DRAIN_MS = 2000

export type OutputStream = 'stdout' | 'stderr'

/** Resolves true when `p` settles within `ms`, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<false>((res) => (timer = setTimeout(() => res(false), ms)))
  const settled = await Promise.race([p.then(() => true, () => true), late])
  clearTimeout(timer)
  return settled
}

/** Forward `readable` chunk by chunk until EOF, an error, or stop(); waits as `forward` asks until `unheld`. */
function pump(readable: ReadableStream<Uint8Array>, forward: (chunk: Uint8Array) => void | Promise<void>, unheld: Promise<void>) {
  const reader = readable.getReader()
  let stopped = false
  let waiting = true
  void unheld.then(() => (waiting = false))
  const done = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done || stopped) return
        const wait = forward(value)
        if (wait && waiting) await Promise.race([wait, unheld])
      }
    } catch {
      // A read error ends this stream's output like EOF does.
    }
  })()
  const stop = () => {
    stopped = true
    reader.cancel().catch(() => {})
  }
  return { done, stop }
}

/**
 * Forward the rank's output and resolve with its exit once the process exited and its output
 * is drained as described above. `proc.cleanup()` has run when this resolves.
 */
export async function rankEnd(proc: RankProcess, forward: (stream: OutputStream, chunk: Uint8Array) => void | Promise<void>): Promise<RankProcessExit> {
  const exited = proc.exited.then(() => {})
  const pumps = [pump(proc.stdout, (c) => forward('stdout', c), exited), pump(proc.stderr, (c) => forward('stderr', c), exited)]
  const eof = Promise.all(pumps.map((p) => p.done))
  const exit = await proc.exited
  if (!(await within(eof, EXIT_GRACE_MS))) {
    proc.cleanup()
    await within(eof, DRAIN_MS)
  }
  // Also when EOF came in time: a leftover may have closed its stdio and still run.
  proc.cleanup()
  for (const p of pumps) p.stop()
  return exit
}
