/**
 * The bookkeeping of one checkpoint in flight: which ranks answered which stage (and what that
 * means: capture is due, a lost rank fails the round), the local snapshots they reported, when
 * each phase ended, and the status lines a tool is shown
 * (`ompx checkpoint -s`: Requested, Pending, Running, Checkpoint Established, Continuing, Finished);
 * the ports through which the global coordinator reaches the job (JobPort, SnapshotPlan), whether
 * a round may start, and how an abandoned round's seq dir is emptied.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { CrsPlugin } from '../../plugins/types'
import type { ProcInfo } from '../../runtime/job'
import type { GlobalMeta, RankMeta, SeqMeta } from '../../sstore/types'
import type { SnapcToNode } from '../../wire/messages'

/** The job, as its global coordinator (global-snapc.ts) sees it. */
export interface JobPort {
  jobid: string
  procs(): ProcInfo[]
  broadcast(msg: SnapcToNode): void
  signal(sig: NodeJS.Signals, ranks?: number[]): void
  /** --term: the ranks were told to finish; the job ends with `status` (0 unless said otherwise). */
  endAfterCheckpoint(status?: number): void
  /** The job is being torn down (failure, signal, timeout). */
  ending(): boolean
  /** Another operation holds the job's ranks (a migration): why a checkpoint must wait, or null. */
  busy?(): string | null
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
  /** Who asked: a tool, the app (request_op), the periodic timer, or a signal (snapc_checkpoint_on_signal). */
  origin: 'tool' | 'app' | 'periodic' | 'signal'
  /** With term: the job's exit status once it has ended (default 0). */
  termStatus?: number
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

  /** Rank `rank` answered PREP OK: true once every rank has, the one time capture is to be sent. */
  quiesced(rank: number): boolean {
    this.stalled.delete(rank)
    this.prepped.add(rank)
    if (!this.all(this.prepped) || this.captureSent) return false
    this.captureSent = true
    this.mark('prepped')
    this.state('Running')
    return true
  }

  /** A rank that exits now fails the round: it is in it and not yet let go with its image taken. */
  needs(rank: number): boolean {
    if (this.released && this.opts.term) return false
    return this.ranks.includes(rank) && !(this.released && this.captured.has(rank))
  }

  /** Which of `ranks` (a lost node's) are in this round and not reported in the global store yet. */
  notInStore(ranks: number[]): number[] {
    return ranks.filter((x) => this.ranks.includes(x) && !this.syncReported.has(x))
  }

  /** Every rank's image is safely written (and, for a direct store, committed): said once. */
  establish(): void {
    if (this.established) return
    this.established = true
    this.state('Checkpoint Established')
  }

  /** This round's entry of global.json. */
  seqMeta(plan: Pick<SnapshotPlan, 'crs' | 'sstore'>, procs: ProcInfo[], kv: Record<string, string>): SeqMeta {
    const ranks = [...this.captured.values()].sort((a, b) => a.rank - b.rank)
    const base = { seq: this.seq, started: this.started, crs: plan.crs, sstore: plan.sstore, options: this.options, bytes: this.bytes() }
    return { ...base, finished: Date.now(), timing: this.timing(), ranks, procs: procs.map((p) => ({ rank: p.rank, app: p.app, node: p.node })), kv }
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

/** Null when a checkpoint of the job could start now, else why not (one line for the user). */
export function whyNotCheckpointable(port: JobPort, crs: CrsPlugin, services: { finalized: Set<number>; inited: Set<number> }): string | null {
  const why = crs.notCheckpointable()
  if (why) return `job ${port.jobid} is not checkpointable: ${why}`
  if (port.ending()) return `job ${port.jobid} is ending; no checkpoint taken`
  const ranks = port.procs().map((p) => p.rank)
  const gone = ranks.find((r) => services.finalized.has(r))
  if (gone !== undefined) return `job ${port.jobid} is not checkpointable: rank ${gone} has finalized or exited`
  if (crs.needsApp) {
    const waiting = ranks.filter((r) => !services.inited.has(r))
    if (waiting.length) return `job ${port.jobid} is not checkpointable yet: ${waiting.length === 1 ? `rank ${waiting[0]} has` : `ranks ${waiting.slice(0, 8).join(',')} have`} not reached the INIT barrier (ompx/app init() or ompx shim)`
  }
  return null
}

/** Remove everything in an abandoned (never listed) seq dir, keeping the dir: it reserves the number. */
export function emptyDir(dir: string): void {
  for (const name of existsSync(dir) ? readdirSync(dir) : []) rmSync(join(dir, name), { recursive: true, force: true })
}
