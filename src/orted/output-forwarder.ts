/**
 * Rank output from an `ompx orted` to the HNP, with flow control (docs/wire.md, "Priority"):
 * output travels on the channel's output lane, so control messages (checkpoint reports, pongs,
 * exits) never wait behind it, and at most OUTPUT_WINDOW bytes of one job's output are on their
 * way before the HNP acknowledges them (`hnp.output-ack`, sent once it has written them or its
 * writer has room). Past the window the daemon stops reading the ranks' pipes, so fast writers
 * block in write(2) instead of the HNP, its memory or its control messages falling behind.
 */
import type { Channel } from '../wire/channel'
import type { OutputStream } from './rank-end'

/** Bytes of one job's output a daemon may have unacknowledged. */
export const OUTPUT_WINDOW = 1024 * 1024

export class OutputForwarder {
  private unacked = 0
  private waiters: (() => void)[] = []
  private closed = false

  constructor(
    private channel: Channel,
    private jobid: string,
  ) {}

  /** Send a chunk; a promise when the window is full (the rank's pipe is read again once it resolves). */
  send(rank: number, stream: OutputStream, data: Uint8Array): void | Promise<void> {
    this.channel.sendOutput({ t: 'orted.output', jobid: this.jobid, rank, stream, data })
    this.unacked += data.length
    if (this.unacked < OUTPUT_WINDOW || this.closed) return
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** The HNP took `bytes` more of this job's output. */
  acked(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes)
    if (this.unacked < OUTPUT_WINDOW) this.wake()
  }

  /** Send `msg` once all output sent so far is on its way: a rank's exit after its last lines. */
  afterOutput(send: () => void): void {
    void this.channel.outputSent().then(send)
  }

  /** The job is over here: nobody waits for acknowledgements any more. */
  close(): void {
    this.closed = true
    this.wake()
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }
}
