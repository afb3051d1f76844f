/**
 * A rank's side of a checkpoint (docs/app-protocol.md, "A checkpoint, as the rank sees it"):
 * answer CKPT with PREP (OK, STALL while quiesced, NULL without a callback), run onCheckpoint on
 * CAPTURE and say DONE, and let the app go on at RELEASE/ABORT, or end it at RELEASE TERM.
 * The app is held from PREP OK until the end (see hold.ts).
 */
import { Hold } from './hold'
import { oneLine } from './lines'

type Awaitable<T> = T | Promise<T>

export interface CheckpointCallbacks {
  checkpoint?: (dir: string) => Awaitable<void>
  cont?: () => Awaitable<void>
  terminate?: () => Awaitable<void>
}

export interface CheckpointIO {
  write(line: string): void
  /** Whether the rank sent FIN: it then takes no part in checkpoints. */
  finalizing(): boolean
  /** The connection is gone: queued requests must not be sent. */
  closed(): boolean
  /** Something changed whether the socket must keep the process alive. */
  changed(): void
  exit(code: number): void
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

export class CheckpointStages {
  readonly hold = new Hold()
  readonly cb: CheckpointCallbacks = {}
  /** The checkpoint under way (CKPT received, RELEASE/ABORT not yet). */
  private ckpt: { prepped: boolean } | null = null
  private quiesced = 0

  constructor(private readonly io: CheckpointIO) {}

  /** A checkpoint is under way: the process must not exit under it. */
  get busy(): boolean {
    return this.ckpt !== null || this.hold.active
  }

  quiesceStart(): void {
    this.quiesced++
  }

  quiesceEnd(): void {
    if (this.quiesced === 0) return
    if (--this.quiesced === 0 && this.ckpt && !this.ckpt.prepped) this.prepared()
  }

  /** Handle a checkpoint line; false when `verb` is not one. */
  onLine(verb: string, arg: string, line: string): boolean {
    switch (verb) {
      case 'CKPT':
        this.onCkpt()
        return true
      case 'CAPTURE':
        void this.onCapture(line.slice('CAPTURE '.length))
        return true
      case 'RELEASE':
        void (arg === 'TERM' ? this.onTerm() : this.onRelease())
        return true
      case 'ABORT':
        void this.onRelease()
        return true
    }
    return false
  }

  /** The connection is gone: whatever was under way is over, and the app must not stay held. */
  reset(): void {
    this.ckpt = null
    this.hold.end(null)
  }

  private onCkpt(): void {
    if (this.io.finalizing()) return this.io.write('PREP NULL the rank is finalizing')
    if (!this.cb.checkpoint) return this.io.write('PREP NULL no onCheckpoint callback registered')
    this.ckpt = { prepped: false }
    this.io.changed()
    if (this.quiesced > 0) this.io.write('PREP STALL')
    else this.prepared()
  }

  private prepared(): void {
    this.ckpt!.prepped = true
    this.hold.start()
    this.io.write('PREP OK')
  }

  private async onCapture(dir: string): Promise<void> {
    this.ckpt ??= { prepped: true }
    this.hold.start() // a CAPTURE without CKPT still must not let the app move while it writes
    this.io.changed()
    try {
      if (!this.cb.checkpoint) throw new Error('no onCheckpoint callback registered')
      await this.cb.checkpoint(dir)
      this.io.write('DONE OK')
    } catch (err) {
      this.io.write(`DONE ERROR ${oneLine(message(err)) || 'onCheckpoint failed'}`)
    }
  }

  private async onRelease(): Promise<void> {
    this.ckpt = null
    try {
      await this.cb.cont?.()
    } catch (err) {
      process.stderr.write(`ompx/app: onContinue failed: ${message(err)}\n`)
    }
    this.hold.end(this.io.closed() ? null : this.io.write)
    this.io.changed()
  }

  private async onTerm(): Promise<void> {
    try {
      await this.cb.terminate?.()
    } catch (err) {
      process.stderr.write(`ompx/app: onTerminate failed: ${message(err)}\n`)
      return this.io.exit(1)
    }
    this.io.exit(0)
  }
}
