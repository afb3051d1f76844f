/**
 * The bookkeeping of one checkpoint in flight: which ranks answered which stage, the local
 * snapshots they reported, when each phase ended, and the status lines a tool is shown
 * (`ompx checkpoint -s`: Requested, Pending, Running, Checkpoint Established, Continuing, Finished);
 * and the ports through which the global coordinator reaches the job (JobPort, SnapshotPlan).
 */
import type { ProcInfo } from '../../runtime/job'
import type { GlobalMeta, RankMeta } from '../../sstore/types'
import type { SnapcToNode } from '../../wire/messages'

/** The job, as its global coordinator (global-snapc.ts) sees it. */
export interface JobPort {
  jobid: string
  procs(): ProcInfo[]
  broadcast(msg: SnapcToNode): void
  signal(sig: NodeJS.Signals, ranks?: number[]): void
  /** --term: the ranks were told to finish; the job ends with status 0. */
  endAfterCheckpoint(): void
  /** The job is being torn down (failure, signal, timeout). */
  ending(): boolean
}

/** Where and how the job's checkpoints are taken. */
export interface SnapshotPlan {
  globalDir: string
  ref: string
  crs: string
  sstore: string
  keep: number
  timeoutSec: number
  /** Everything of global.json except the seqs (apps, nodes, params...). */
  base: Omit<GlobalMeta, 'seqs'>
}


export const CKPT_STATES = ['Requested', 'Pending', 'Running', 'Checkpoint Established', 'Continuing', 'Finished'] as const
export type CkptState = (typeof CKPT_STATES)[number] | 'Error'

export interface CkptOptions {
  term: boolean
  stop: boolean
  /** Who asked: a tool, the app (request_op), or the periodic timer. */
  origin: 'tool' | 'app' | 'periodic'
}

export interface CkptResult {
  ref: string
  seq: number
  dir: string
  bytes: number
  timing: Record<string, number>
}

export type Progress = (state: CkptState, elapsedMs: number) => void

export class CkptRound {
  readonly started = Date.now()
  private readonly t0 = performance.now()
  readonly prepped = new Set<number>()
  readonly stalled = new Set<number>()
  readonly captured = new Map<number, RankMeta>()
  readonly synced = new Set<number>()
  /** performance.now() at the end of each phase. */
  private marks: Record<string, number> = {}
  /** Ranks whose node said `synced` (a stage store's files may still be under verification). */
  readonly syncReported = new Set<number>()
  established = false
  released = false
  failed = false
  /** Capture was broadcast: once per round, however many PREP OKs arrive. */
  captureSent = false
  /**
   * The commit has started: from now on only its own outcome decides. A failure arriving meanwhile
   * is remembered here and neither empties the seq dir nor rejects; a listed seq is never undone.
   */
  committing = false
  lateFailure?: string
  private listeners: Progress[] = []
  resolve!: (r: CkptResult) => void
  reject!: (e: Error) => void
  readonly done: Promise<CkptResult>

  constructor(
    readonly seq: number,
    readonly ranks: number[],
    readonly opts: CkptOptions,
    progress?: Progress,
  ) {
    if (progress) this.listeners.push(progress)
    this.done = new Promise((res, rej) => {
      this.resolve = res
      this.reject = rej
    })
    // Nobody may be awaiting `done` (periodic checkpoints): a failure must not be "unhandled".
    this.done.catch(() => {})
  }

  get options(): string[] {
    return [...(this.opts.term ? ['term'] : []), ...(this.opts.stop ? ['stop'] : [])]
  }

  follow(p: Progress): void {
    this.listeners.push(p)
  }

  state(s: CkptState): void {
    const elapsed = performance.now() - this.t0
    for (const l of this.listeners) {
      try {
        l(s, elapsed)
      } catch {
        // A tool that went away must not break the checkpoint.
      }
    }
  }

  mark(phase: 'prepped' | 'captured' | 'synced' | 'committed' | 'released'): void {
    this.marks[phase] ??= performance.now()
  }

  all(set: { size: number }): boolean {
    return set.size >= this.ranks.length
  }

  bytes(): number {
    let n = 0
    for (const m of this.captured.values()) n += m.bytes
    return n
  }

  /** Phase durations (ms) as `--timing` shows them. Release may come before the store sync (stage). */
  timing(): Record<string, number> {
    const m = this.marks
    const d = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? Math.max(0, Math.round((b - a) * 10) / 10) : 0)
    const releasedFrom = m.committed !== undefined && (m.released ?? 0) >= m.committed ? m.committed : m.captured
    return {
      running: d(this.t0, m.prepped),
      localFinish: d(m.prepped, m.captured),
      storeSync: d(m.captured, m.synced),
      establish: d(m.synced, m.committed),
      continue: d(releasedFrom, m.released),
      total: d(this.t0, Math.max(m.committed ?? 0, m.released ?? 0)),
    }
  }
}
