/**
 * A rank's side of a checkpoint (docs/app-protocol.md, "A checkpoint, as the rank sees it"):
 * answer CKPT with PREP (OK, STALL while quiesced, NULL without a callback), run onCheckpoint on
 * CAPTURE and say DONE, and let the app go on at RELEASE/ABORT, or end it at RELEASE TERM.
 * The app is held from PREP OK until the end (see hold.ts). A migration round is a checkpoint
 * whose CKPT says `all_migrating` (and `migrating` to the movers): the movers capture and end,
 * the others take no capture, are held, and hear at RELEASE which ranks moved.
 */
import { Hold } from './hold'
import { oneLine, splitFields } from './lines'

type Awaitable<T> = T | Promise<T>

/** The round under way, from its CKPT line: what onCheckpoint is told. */
export interface CheckpointInfo {
  seq: number
  ref: string
  /** The rank ends after this checkpoint (RELEASE TERM follows). */
  term: boolean
  stop: boolean
  /** This rank moves: it saves its state and ends; it starts again on its new node. */
  migrating: boolean
  /** The round is a migration (every rank is told; only the movers capture). */
  allMigrating: boolean
}

/** What onContinue is told when a round is over. */
export interface ContinueInfo {
  /** Ranks that moved to other nodes in this round (empty after a checkpoint, or an abandoned move). */
  migrated: number[]
  /** The round was abandoned (ABORT): nothing was taken, nothing moved. */
  aborted: boolean
  allMigrating: boolean
}

/** What onTerminate is told: `migrating` means the rank ends here to go on elsewhere. */
export interface TerminateInfo {
  migrating: boolean
}

export interface CheckpointCallbacks {
  checkpoint?: (dir: string, info: CheckpointInfo) => Awaitable<void>
  cont?: (info: ContinueInfo) => Awaitable<void>
  terminate?: (info: TerminateInfo) => Awaitable<void>
}

const NO_ROUND: CheckpointInfo = { seq: -1, ref: '', term: false, stop: false, migrating: false, allMigrating: false }

/** `CKPT <seq> <options> <text:ref>`; unknown options are ignored (a newer daemon may say more). */
export function parseCkpt(line: string): CheckpointInfo {
  const [, seq = '', options = '-', ref = ''] = splitFields(line, 4)
  const opts = new Set(options.split(','))
  const n = Number(seq)
  return {
    seq: /^\d+$/.test(seq) ? n : -1,
    ref,
    term: opts.has('term'),
    stop: opts.has('stop'),
    migrating: opts.has('migrating'),
    allMigrating: opts.has('all_migrating') || opts.has('migrating'),
  }
}

/** The ranks of a `migrated=<r,r,...>` field of a RELEASE line (others ignored). */
export function parseMigrated(fields: string[]): number[] {
  const f = fields.find((x) => x.startsWith('migrated='))
  if (!f) return []
  return f.slice(9).split(',').filter((r) => /^\d{1,9}$/.test(r)).map(Number)
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
  private ckpt: { prepped: boolean; info: CheckpointInfo } | null = null
  private quiesced = 0

  constructor(private readonly io: CheckpointIO) {}

  /** The round under way (from its CKPT), or null. */
  get round(): CheckpointInfo | null {
    return this.ckpt ? { ...this.ckpt.info } : null
  }

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
        this.onCkpt(parseCkpt(line))
        return true
      case 'CAPTURE':
        void this.onCapture(line.slice('CAPTURE '.length))
        return true
      case 'RELEASE':
        void (arg === 'TERM' ? this.onTerm() : this.onRelease(parseMigrated(line.split(' ').slice(2)), false))
        return true
      case 'ABORT':
        void this.onRelease([], true)
        return true
    }
    return false
  }

  /** The connection is gone: whatever was under way is over, and the app must not stay held. */
  reset(): void {
    this.ckpt = null
    this.hold.end(null)
  }

  private onCkpt(info: CheckpointInfo): void {
    if (this.io.finalizing()) return this.io.write('PREP NULL the rank is finalizing')
    // A rank that stays put in a migration takes no capture: it needs no callback to be held.
    const captures = info.migrating || !info.allMigrating
    if (captures && !this.cb.checkpoint) return this.io.write('PREP NULL no onCheckpoint callback registered')
    this.ckpt = { prepped: false, info }
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
    this.ckpt ??= { prepped: true, info: NO_ROUND }
    this.hold.start() // a CAPTURE without CKPT still must not let the app move while it writes
    this.io.changed()
    try {
      if (!this.cb.checkpoint) throw new Error('no onCheckpoint callback registered')
      await this.cb.checkpoint(dir, { ...this.ckpt.info })
      this.io.write('DONE OK')
    } catch (err) {
      this.io.write(`DONE ERROR ${oneLine(message(err)) || 'onCheckpoint failed'}`)
    }
  }

  private async onRelease(migrated: number[], aborted: boolean): Promise<void> {
    const allMigrating = this.ckpt?.info.allMigrating ?? false
    this.ckpt = null
    try {
      await this.cb.cont?.({ migrated, aborted, allMigrating })
    } catch (err) {
      process.stderr.write(`ompx/app: onContinue failed: ${message(err)}\n`)
    }
    this.hold.end(this.io.closed() ? null : this.io.write)
    this.io.changed()
  }

  private async onTerm(): Promise<void> {
    try {
      await this.cb.terminate?.({ migrating: this.ckpt?.info.migrating ?? false })
    } catch (err) {
      process.stderr.write(`ompx/app: onTerminate failed: ${message(err)}\n`)
      return this.io.exit(1)
    }
    this.io.exit(0)
  }
}
