/**
 * Where rank output goes. Each rank's stdout and stderr are cut at line ends so that lines of
 * different ranks never interleave mid-line; a tail without a newline is held until more
 * arrives or the stream ends, and then written as it is, unterminated (as mpirun does:
 * `printf abc` prints `abc`). Tags (`[jobid,rank]<stdout>:`), timestamps, per-rank files and
 * stderr merging are applied here, once, for every node's output.
 */
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ActionableError, errorMessage } from '../../errors'
import { QueuedWriter } from './writer'

/**
 * Check --output-filename before anything starts: create its directories (as mpirun does) and
 * a probe file next to where the ranks' files go, so a path that cannot hold them is a user
 * error up front rather than a failure in the middle of the job.
 */
export function checkOutputFilename(path: string): void {
  const dir = dirname(path)
  const probe = `${path}.ompx-probe-${process.pid}`
  try {
    mkdirSync(dir, { recursive: true })
    closeSync(openSync(probe, 'wx', 0o644))
    unlinkSync(probe)
  } catch (err) {
    throw new ActionableError(`--output-filename ${path}: cannot create the rank files ${path}.<rank> (${errorMessage(err)}); choose a writable directory`)
  }
}

export interface OutputOptions {
  jobid: string
  tag: boolean
  timestamp: boolean
  mergeStderr: boolean
  /** Write rank r's output to `${outputFilename}.${r}`. */
  outputFilename?: string
}

type Stream = 'stdout' | 'stderr'

/** Where a job's output goes: the terminal (OutputRouter) or a submitting client (forward-sink). */
export interface OutputSink {
  /**
   * Take a chunk of a rank's output. A promise asks the producer to read no more of the rank's
   * output until it resolves (a slow reader of ours: back-pressure down to the rank's pipe).
   */
  data(rank: number, stream: Stream, chunk: Uint8Array): void | Promise<void>
  /**
   * The rank's stream ended: its held partial line goes out, unless it is exactly `carried`, the
   * partial line a `--term` checkpoint saved for the restart to print (nothing was added since).
   */
  end(rank: number, stream: Stream, carried?: Uint8Array): void
  /** A runtime message for the user (one line, newline included). */
  message(text: string): void
  close(): Promise<void>
  /** Register what to do when output can no longer be delivered (closed terminal or pipe). */
  onBroken?(cb: () => void): void
}
const NL = 10
const encoder = new TextEncoder()

export class OutputRouter implements OutputSink {
  private pending = new Map<string, Uint8Array>()
  private files = new Map<number, number>()
  readonly stdout = new QueuedWriter(1)
  readonly stderr = new QueuedWriter(2)

  constructor(private opts: OutputOptions) {}

  data(rank: number, stream: Stream, chunk: Uint8Array): void | Promise<void> {
    const key = `${rank}:${stream}`
    const held = this.pending.get(key)
    const bytes = held ? Buffer.concat([held, chunk]) : chunk
    const cut = bytes.lastIndexOf(NL)
    if (cut < 0) {
      this.pending.set(key, bytes)
      return
    }
    if (cut + 1 < bytes.length) this.pending.set(key, bytes.slice(cut + 1))
    else this.pending.delete(key)
    return this.emit(rank, stream, bytes.subarray(0, cut + 1))
  }

  end(rank: number, stream: Stream, carried?: Uint8Array): void {
    const key = `${rank}:${stream}`
    const held = this.pending.get(key)
    if (!held) return
    this.pending.delete(key)
    if (carried && Buffer.from(carried).equals(held)) return
    void this.emit(rank, stream, held)
  }

  message(text: string): void {
    this.stderr.write(encoder.encode(text))
  }

  onBroken(cb: () => void): void {
    this.stdout.onBroken = cb
  }

  /** `lines`: whole lines, each ending in "\n", but for a stream's last, unterminated one. */
  private emit(rank: number, stream: Stream, lines: Uint8Array): Promise<void> | undefined {
    const out = this.decorate(rank, stream, lines)
    if (this.opts.outputFilename) {
      let fd = this.files.get(rank)
      if (fd === undefined) {
        // mpirun creates the directories of --output-filename; so do we.
        mkdirSync(dirname(this.opts.outputFilename), { recursive: true })
        fd = openSync(`${this.opts.outputFilename}.${rank}`, 'w', 0o644)
        this.files.set(rank, fd)
      }
      writeSync(fd, out)
      return
    }
    const writer = stream === 'stderr' && !this.opts.mergeStderr ? this.stderr : this.stdout
    writer.write(out)
    return writer.ready()
  }

  private decorate(rank: number, stream: Stream, lines: Uint8Array): Uint8Array {
    if (!this.opts.tag && !this.opts.timestamp) return lines
    let prefix = ''
    if (this.opts.timestamp) prefix += `${new Date().toISOString()} `
    if (this.opts.tag) prefix += `[${this.opts.jobid},${rank}]<${stream}>:`
    const text = Buffer.from(lines.buffer, lines.byteOffset, lines.byteLength).toString('utf8')
    // One prefix per line; an unterminated last line gets its prefix and no newline.
    const whole = text.endsWith('\n')
    const body = whole ? text.slice(0, -1) : text
    return encoder.encode(prefix + body.split('\n').join(`\n${prefix}`) + (whole ? '\n' : ''))
  }

  async close(): Promise<void> {
    // Streams that never saw their end (a lost node): their last partial lines, as they are.
    for (const key of [...this.pending.keys()]) {
      const [rank, stream] = key.split(':')
      this.end(Number(rank), stream as Stream)
    }
    for (const fd of this.files.values()) closeSync(fd)
    this.files.clear()
    await Promise.all([this.stdout.flush(), this.stderr.flush()])
  }
}
