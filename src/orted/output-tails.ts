/**
 * The partial line of each rank's stdout and stderr: the bytes after the last newline the node
 * has forwarded. A checkpoint stores it with the rank's snapshot (RankMeta.outputTail), so that
 * after a restart the line the checkpoint cut comes out whole: the HNP prints the stored part
 * before the restarted rank's first bytes, and a `--term` job does not print it at its end.
 */
import type { OutputTail } from '../sstore/types'
import type { OutputStream } from './rank-end'

/** A partial line longer than this is not carried over a restart (it is printed as it is). */
export const MAX_CARRIED_TAIL = 64 * 1024
const NL = 10

export class OutputTails {
  /** null: the partial line grew past MAX_CARRIED_TAIL. */
  private tails = new Map<string, Uint8Array | null>()

  note(rank: number, stream: OutputStream, chunk: Uint8Array): void {
    const key = `${rank}:${stream}`
    const cut = chunk.lastIndexOf(NL)
    if (cut >= 0) {
      if (cut + 1 === chunk.length) this.tails.delete(key)
      else this.tails.set(key, chunk.length - cut - 1 > MAX_CARRIED_TAIL ? null : chunk.slice(cut + 1))
      return
    }
    const held = this.tails.get(key)
    if (held === null) return
    const grown = held ? held.length + chunk.length : chunk.length
    this.tails.set(key, grown > MAX_CARRIED_TAIL ? null : held ? Buffer.concat([held, chunk]) : chunk.slice())
  }

  /** The rank's partial lines (base64), or undefined when both streams end at a line end. */
  of(rank: number): OutputTail | undefined {
    const out: OutputTail = {}
    for (const stream of ['stdout', 'stderr'] as const) {
      const tail = this.tails.get(`${rank}:${stream}`)
      if (tail) out[stream] = Buffer.from(tail).toString('base64')
    }
    return out.stdout || out.stderr ? out : undefined
  }

  forget(rank: number): void {
    this.tails.delete(`${rank}:stdout`)
    this.tails.delete(`${rank}:stderr`)
  }
}
