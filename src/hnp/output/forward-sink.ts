/**
 * Output of a job submitted to a persistent HNP goes back to the `ompx run --hnp` that
 * submitted it, raw; that client cuts lines and applies tags exactly as a local run would.
 * A client that falls behind slows the job's ranks (back-pressure), not the HNP's memory.
 */
import type { Channel } from '../../wire/channel'
import type { OutputSink } from './output-router'
import { BACKLOG_BYTES } from './writer'

export class ForwardSink implements OutputSink {
  constructor(
    private channel: Channel,
    private jobid: string,
  ) {}

  data(rank: number, stream: 'stdout' | 'stderr', chunk: Uint8Array): void | Promise<void> {
    // The control lane on purpose: the job's exit (hnp.job-exit) must not overtake its output.
    this.channel.send({ t: 'orted.output', jobid: this.jobid, rank, stream, data: chunk })
    if (this.channel.queuedBytes >= BACKLOG_BYTES) return this.channel.drained(BACKLOG_BYTES).catch(() => {})
  }

  end(): void {
    // The client flushes partial lines when the job exits.
  }

  message(text: string): void {
    this.channel.send({ t: 'hnp.notice', jobid: this.jobid, text })
  }

  async close(): Promise<void> {}
}
