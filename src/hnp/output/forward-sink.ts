/**
 * Output of a job submitted to a persistent HNP goes back to the `ompx run --hnp` that
 * submitted it, raw; that client cuts lines and applies tags exactly as a local run would.
 */
import type { Channel } from '../../wire/channel'
import type { OutputSink } from './output-router'

export class ForwardSink implements OutputSink {
  constructor(
    private channel: Channel,
    private jobid: string,
  ) {}

  data(rank: number, stream: 'stdout' | 'stderr', chunk: Uint8Array): void {
    this.channel.send({ t: 'orted.output', jobid: this.jobid, rank, stream, data: chunk })
  }

  end(): void {
    // The client flushes partial lines when the job exits.
  }

  message(text: string): void {
    this.channel.send({ t: 'hnp.notice', jobid: this.jobid, text })
  }

  async close(): Promise<void> {}
}
