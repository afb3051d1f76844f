/**
 * The global coordinator (snapc "global"): one per job, in the HNP. Drives a checkpoint across
 * the job's nodes — stage 1 PREP on every rank, stage 2 capture once all are quiesced, sync to
 * the global store, commit of global.json (written last, atomically), stage 3 release — and
 * abandons it cleanly when anything fails: the seq is never listed, older snapshots untouched.
 */
import { mkdirSync } from 'node:fs'
import { ActionableError, errorMessage } from '../../errors'
import type { Registry } from '../../plugins/registry'
import type { CrsPlugin, SStorePlugin } from '../../plugins/types'
import { PRIVATE_DIR_MODE } from '../../sstore/durable'
import { FileReceiver } from '../../sstore/file-receiver'
import { GlobalSnapshot } from '../../sstore/global-snapshot'
import type { OutputTail, SeqMeta } from '../../sstore/types'
import type { MessageOf } from '../../wire/messages'
import type { AppServices } from './app-services'
import { CkptRound, emptyDir, whyNotCheckpointable, type CkptOptions, type CkptResult, type JobPort, type Progress, type SnapshotPlan } from './ckpt-round'

export type { JobPort, SnapshotPlan } from './ckpt-round'

export class GlobalSnapc {
  private round?: CkptRound
  private snapshot?: GlobalSnapshot
  private receivers = new Map<number, FileReceiver>()
  private timer?: Timer
  /** The partial output lines a committed `--term` checkpoint saved, by rank (carried to the restart). */
  readonly carriedTails = new Map<number, OutputTail>()

  constructor(
    private port: JobPort,
    private services: AppServices,
    private registry: Registry,
    readonly plan: SnapshotPlan,
  ) {}

  get inProgress(): boolean {
    return this.round !== undefined
  }

  private get crs(): CrsPlugin {
    return this.registry.select('crs', this.plan.crs)
  }

  private get sstore(): SStorePlugin {
    return this.registry.select('sstore', this.plan.sstore)
  }

  /** Null when a checkpoint could start now, else why not (one line for the user). */
  whyNot(): string | null {
    return whyNotCheckpointable(this.port, this.crs, this.services)
  }

  /** Take a checkpoint; resolves when it is committed (Finished), rejects with the reason otherwise. */
  request(opts: CkptOptions, progress?: Progress): Promise<CkptResult> {
    if (this.round) throw new ActionableError(`checkpoint in progress for job ${this.port.jobid} (seq ${this.round.seq}); try again when it has finished`)
    const busy = this.port.busy?.()
    if (busy) throw new ActionableError(busy)
    const why = this.whyNot()
    if (why) throw new ActionableError(why)
    const snap = this.openSnapshot()
    const ranks = this.port.procs().map((p) => p.rank)
    const round = (this.round = new CkptRound(snap.nextSeq(), ranks, opts, progress))
    round.state('Requested')
    this.timer = setTimeout(() => this.fail(round, `not finished within ${this.plan.timeoutSec} s (snapc_base_timeout)`), this.plan.timeoutSec * 1000)
    this.send(round, 'prep')
    round.state('Pending')
    return round.done
  }

  /** Follow the checkpoint in progress (a second tool with -s). */
  follow(p: Progress): boolean {
    this.round?.follow(p)
    return this.round !== undefined
  }

  latest(): SeqMeta | undefined {
    try {
      return this.snapshot?.latest() ?? GlobalSnapshot.tryOpen(this.plan.globalDir, this.plan.ref)?.latest()
    } catch {
      return undefined
    }
  }

  private openSnapshot(): GlobalSnapshot {
    this.snapshot ??= GlobalSnapshot.tryOpen(this.plan.globalDir, this.plan.ref) ?? GlobalSnapshot.create(this.plan.globalDir, this.plan.ref)
    return this.snapshot
  }

  private send(r: CkptRound, op: MessageOf<'hnp.ckpt'>['op'], text?: string): void {
    const store = { sstore: this.plan.sstore, globalDir: this.plan.globalDir, ref: this.plan.ref, seq: r.seq, crs: this.plan.crs }
    this.port.broadcast({ t: 'hnp.ckpt', jobid: this.port.jobid, op, store, ranks: r.ranks, options: r.options, text })
  }

  /** A daemon's report on one rank. */
  report(m: MessageOf<'orted.ckpt'>): void {
    const r = this.round
    if (!r || r.failed || m.seq !== r.seq) return
    if (m.status === 'null' || m.status === 'error') {
      return this.fail(r, m.status === 'null' ? `not checkpointable: ${m.message ?? `rank ${m.rank} answered NULL`}` : (m.message ?? `rank ${m.rank} failed`))
    }
    if (m.op === 'prep') {
      if (m.status === 'stall') return void r.stalled.add(m.rank)
      if (r.quiesced(m.rank)) this.send(r, 'capture')
    } else if (m.op === 'captured' && m.snapshot) {
      r.captured.set(m.rank, m.snapshot)
      if (r.all(r.captured)) {
        r.mark('captured')
        // A stage store syncs in the background: ranks go on meanwhile, unless they are to
        // terminate — then only a committed snapshot may let them go.
        if (!this.sstore.direct && !r.opts.term) this.release(r)
      }
    } else if (m.op === 'synced') {
      r.syncReported.add(m.rank)
      void this.synced(r, m.rank)
    }
  }

  /**
   * Where a rank's staged local snapshot is written in the global store (files arrive after the
   * rank's `captured` report), or null when no checkpoint in progress expects them. A failed
   * write is sticky in the receiver and fails the checkpoint at the rank's `synced` report.
   */
  receiver(m: { ref: string; seq: number; rank: number }): FileReceiver | null {
    const r = this.round
    if (!r || r.failed || m.seq !== r.seq || m.ref !== this.plan.ref) return null
    let rx = this.receivers.get(m.rank)
    if (!rx) {
      const expected = r.captured.get(m.rank)?.files
      if (!expected) {
        this.fail(r, `rank ${m.rank} sent snapshot data before reporting its capture`)
        return null
      }
      this.receivers.set(m.rank, (rx = new FileReceiver(this.snapshot!.rankDir(r.seq, m.rank), { expected })))
    }
    return rx
  }

  /**
   * A rank's local snapshot is in the global store: for a stage store, once its files are verified
   * on disk. Every continuation acts on its own round only: by then `r` may have been abandoned.
   */
  private async synced(r: CkptRound, rank: number): Promise<void> {
    const rx = this.receivers.get(rank)
    if (rx) {
      try {
        await rx.finish()
      } catch (err) {
        return this.fail(r, `rank ${rank}'s snapshot arrived damaged: ${errorMessage(err)}`)
      }
    }
    if (r !== this.round || r.failed) return
    if (rx) this.receivers.delete(rank)
    r.synced.add(rank)
    if (r.all(r.synced) && r.all(r.captured) && !r.committing) void this.commit(r)
  }

  private release(r: CkptRound): void {
    if (r.released) return
    r.released = true
    r.establish()
    this.send(r, 'release', r.opts.term ? 'term' : 'continue')
    r.mark('released')
    r.state('Continuing')
    if (!r.opts.term) return
    for (const [rank, m] of r.captured) if (m.outputTail) this.carriedTails.set(rank, m.outputTail)
    this.port.endAfterCheckpoint(r.opts.termStatus)
  }

  /**
   * Write global.json. Commit and abort exclude each other: a failure from now on waits (see fail);
   * a seq is listed only if complete and, once listed, never emptied; then release or end the ranks.
   */
  private async commit(r: CkptRound): Promise<void> {
    r.committing = true
    r.mark('synced')
    const snap = this.snapshot!
    try {
      const seq = r.seqMeta(this.plan, this.port.procs(), this.services.snapshotKv())
      // A stage store's receiver makes rank_<r> when files arrive: an image without files has none yet.
      for (const m of seq.ranks) if (m.files.length === 0) mkdirSync(snap.rankDir(r.seq, m.rank), { recursive: true, mode: PRIVATE_DIR_MODE })
      await snap.commit(seq, this.plan.base, this.plan.keep)
      r.mark('committed')
    } catch (err) {
      // Listed after all (what failed came after the rename): the checkpoint is taken.
      if (!snap.list().some((s) => s.seq === r.seq)) {
        r.committing = false
        return this.fail(r, `committing ${this.plan.ref}: ${errorMessage(err)}${r.lateFailure ? ` (after: ${r.lateFailure})` : ''}`)
      }
    }
    r.establish()
    if (this.sstore.direct || r.opts.term) this.release(r)
    if (r.opts.stop && !r.lateFailure) this.port.signal('SIGSTOP')
    if (this.round === r) this.finish()
    r.state('Finished')
    r.resolve({ ref: this.plan.ref, seq: r.seq, dir: snap.dir, bytes: r.bytes(), timing: r.timing() })
  }

  /** A rank exited: a checkpoint that still needs it cannot succeed. */
  rankGone(rank: number): void {
    const r = this.round
    if (r && !r.failed && r.needs(rank)) this.fail(r, `rank ${rank} exited during the checkpoint`)
  }

  /**
   * A node was lost: its ranks' images that are not in the global store yet never will be (even
   * ranks that were released and have exited since), so the checkpoint fails at once.
   */
  nodeLost(node: string, ranks: number[]): void {
    const r = this.round
    const missing = r && !r.failed ? r.notInStore(ranks) : []
    if (r && missing.length) this.fail(r, `node ${node} was lost before rank${missing.length === 1 ? '' : 's'} ${missing.join(',')} reached the global store`)
  }

  /** Abandon round `r` (only if it is still the one in progress): nothing listed, ranks told ABORT. */
  private fail(r: CkptRound, why: string): void {
    if (r !== this.round || r.failed) return
    if (r.committing) return void (r.lateFailure ??= why)
    r.failed = true
    if (!r.released) this.send(r, 'abort', why)
    for (const rx of this.receivers.values()) void rx.abort(why)
    this.receivers.clear()
    // Not listed, so invisible already; late reports of it never match a new seq (see emptyDir).
    if (this.snapshot) emptyDir(this.snapshot.seqDir(r.seq))
    this.finish()
    r.state('Error')
    r.reject(new ActionableError(`checkpoint of job ${this.port.jobid} failed: ${why}; no snapshot was taken${this.latestNote()}`))
  }

  private latestNote(): string {
    const last = this.latest()
    return last ? ` (the last good one, seq ${last.seq} of ${this.plan.ref}, is intact)` : ''
  }

  private finish(): void {
    clearTimeout(this.timer)
    this.round = undefined
    this.services.checkpointEnded()
  }

  /** Wait for a checkpoint in flight (the job may not tear down its nodes under it). */
  async settled(): Promise<void> {
    await this.round?.done.catch(() => {})
  }
}
