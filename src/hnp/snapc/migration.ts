/**
 * One migration round (the seed's errmgr migration, driven like a checkpoint): PREP to the job's
 * ranks with `all_migrating` (movers also `migrating`), a terminating capture of the movers alone
 * through their CRS, their images through the HNP (the stage store's transfer, never a shared
 * disk), the old ranks' end on their source nodes, then a restore on each target through the CRS
 * restore hook, and only then the release of the ranks that stayed. Nothing is lost: a failure
 * before the movers ended aborts the round and every rank goes on where it was; a restore that
 * fails on the target is rolled back onto the source from the same images.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ActionableError, errorMessage } from '../../errors'
import type { RankExit } from '../../node/contract'
import { FileReceiver } from '../../sstore/file-receiver'
import type { RankMeta } from '../../sstore/types'
import type { MessageOf, SnapcToNode } from '../../wire/messages'
import type { MovesPort } from '../job/rank-moves'
import type { MigrationProgress, MigrationRequest, MigrationResult, MovedRank } from './migrate-types'

export interface MigrationPort {
  jobid: string
  ranks: number[]
  node(rank: number): string
  pid(rank: number): number
  broadcast(msg: SnapcToNode): void
  signal(sig: NodeJS.Signals, ranks: number[]): void
  moves: MovesPort
  /** Where the images wait between source and target (the job's session dir on the HNP). */
  workDir: string
  crs: string
  needsApp: boolean
  /** How long a source may take to end after its release before it is killed (kill_grace). */
  graceMs: number
  timeoutMs: number
}

type Waiter = { ranks: Set<number>; resolve: () => void; reject: (e: Error) => void }

export class MigrationRound {
  private readonly t0 = performance.now()
  private readonly movers: number[]
  private readonly others: number[]
  readonly ref: string
  private captured = new Map<number, RankMeta>()
  private receivers = new Map<number, FileReceiver>()
  private waiting?: Waiter
  private failure?: Error
  private marks: Record<string, number> = {}
  /** Once the movers' old selves were told to end, the round can no longer be abandoned. */
  private committed = false
  private captureSent = false
  /** Why a mover could not start on its target (it was restored on its source instead). */
  private rolledBack = new Map<number, string>()
  /** Movers whose restored app has not connected to its new node's coordinator yet. */
  private relinks = new Map<number, PromiseWithResolvers<void>>()

  constructor(
    private port: MigrationPort,
    private req: MigrationRequest,
    readonly seq: number,
    private progress?: MigrationProgress,
  ) {
    this.movers = req.moves.map((m) => m.rank)
    this.others = port.ranks.filter((r) => !this.movers.includes(r))
    this.ref = `migration_${port.jobid}`
  }

  private get dir(): string {
    return join(this.port.workDir, `migration-${-this.seq}`)
  }

  private state(s: Parameters<MigrationProgress>[0]): void {
    this.progress?.(s, Math.round(performance.now() - this.t0))
  }

  private mark(phase: string): void {
    this.marks[phase] = Math.round(performance.now() - this.t0)
  }

  private send(op: MessageOf<'hnp.ckpt'>['op'], ranks: number[], options: string[], text?: string): void {
    const store = { sstore: 'stage', globalDir: this.dir, ref: this.ref, seq: this.seq, crs: this.port.crs }
    this.port.broadcast({ t: 'hnp.ckpt', jobid: this.port.jobid, op, store, ranks, options, text, movers: this.movers })
  }

  /** Resolves once every rank of `ranks` was ticked off by `tick`, rejects on the round's failure. */
  private await(ranks: number[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    this.waiting = { ranks: new Set(ranks), resolve, reject }
    if (ranks.length === 0) resolve()
    return promise
  }

  private tick(rank: number): void {
    const w = this.waiting
    if (!w?.ranks.delete(rank)) return
    if (w.ranks.size === 0) w.resolve()
  }

  /** A failure before the movers were released ends the round: everyone goes on where they were. */
  fail(why: string): void {
    if (this.failure || this.committed) return
    this.failure = new ActionableError(`migration of job ${this.port.jobid} failed: ${why}; every rank goes on where it was`)
    this.waiting?.reject(this.failure)
  }

  /** A daemon's report about one rank (the checkpoint protocol's, with this round's seq). */
  report(m: MessageOf<'orted.ckpt'>): void {
    if (m.seq !== this.seq) return
    if (m.status === 'null' || m.status === 'error') return this.fail(m.message ?? `rank ${m.rank} could not be captured`)
    if (m.op === 'prep' && m.status === 'ok') this.tick(m.rank)
    else if (m.op === 'captured' && m.snapshot) this.captured.set(m.rank, m.snapshot)
    else if (m.op === 'synced') {
      const rx = this.receivers.get(m.rank)
      const done = rx ? rx.finish().then(() => undefined) : Promise.resolve()
      done.then(
        () => this.tick(m.rank),
        (err) => this.fail(`rank ${m.rank}'s image arrived damaged: ${errorMessage(err)}`),
      )
    }
  }

  /** Where a mover's image is written on the HNP, as it arrives from its source node. */
  receiver(m: { ref: string; seq: number; rank: number }): FileReceiver | null {
    if (m.ref !== this.ref || m.seq !== this.seq || !this.movers.includes(m.rank) || this.failure) return null
    let rx = this.receivers.get(m.rank)
    const expected = this.captured.get(m.rank)?.files
    if (!rx && expected) this.receivers.set(m.rank, (rx = new FileReceiver(join(this.dir, `rank_${m.rank}`), { expected })))
    return rx ?? null
  }

  /** A rank's app coordinator connected (or reconnected, on its new node). */
  appLinked(rank: number): void {
    this.relinks.get(rank)?.resolve()
  }

  /** A rank ended on its own (not a mover's old self): the round is abandoned. */
  rankGone(rank: number): void {
    this.fail(`rank ${rank} exited during the migration`)
  }

  async run(): Promise<MigrationResult> {
    const timer = setTimeout(() => this.fail(`not finished within ${Math.round(this.port.timeoutMs / 1000)} s (snapc_base_timeout)`), this.port.timeoutMs)
    const from = new Map(this.movers.map((r) => [r, this.port.node(r)]))
    const oldPids = new Map(this.movers.map((r) => [r, this.port.pid(r)]))
    const stopped = this.req.hold && !this.port.needsApp ? this.others : []
    try {
      this.state('Running')
      mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      await this.port.moves.ensureNodes([...new Set(this.req.moves.map((m) => m.to))])
      if (stopped.length) this.port.signal('SIGSTOP', stopped)
      const prepped = this.port.needsApp ? this.port.ranks : this.movers
      // Waiting starts before sending: an in-process node may answer within send().
      const ready = this.await(prepped)
      this.send('prep', prepped, ['all_migrating'])
      await ready
      this.mark('prepped')
      this.state('Checkpointing')
      const synced = this.await(this.movers)
      // An app-level mover saves its state and waits for its release (TERM); a transparent one is
      // left stopped by its capture, so a failed round can still let it go on (SIGCONT).
      this.captureSent = true
      this.send('capture', this.movers, [this.port.needsApp ? 'term' : 'stop', 'migrating'])
      await synced
      this.mark('captured')
    } catch (err) {
      clearTimeout(timer)
      this.send('abort', this.port.needsApp ? this.port.ranks : this.movers, [], errorMessage(err))
      const resumed = [...stopped, ...(this.captureSent && !this.port.needsApp ? this.movers : [])]
      if (resumed.length) this.port.signal('SIGCONT', resumed)
      this.cleanup(false)
      throw err
    }
    // From here on the movers end on their sources: the round goes through (or rolls back).
    this.committed = true
    clearTimeout(timer)
    this.state('Moving')
    const left = this.movers.map((r) => this.port.moves.leaving(r, from.get(r)!))
    if (this.port.needsApp) this.send('release', this.movers, [], 'term')
    else for (const r of this.movers) this.port.moves.kill(r, from.get(r)!)
    await Promise.all(left.map((p, i) => this.ended(p, this.movers[i]!, from.get(this.movers[i]!)!)))
    this.mark('left')
    this.state('Restarting')
    // An app-level mover runs again once its app is back on its coordinator: only then can the
    // job be checkpointed, or migrated, again.
    if (this.port.needsApp) for (const r of this.movers) this.relinks.set(r, Promise.withResolvers<void>())
    const moved = await Promise.all(this.req.moves.map((m) => this.arrive(m.rank, from.get(m.rank)!, m.to, oldPids.get(m.rank)!)))
    let patience: Timer | undefined
    await Promise.race([Promise.all([...this.relinks.values()].map((w) => w.promise)), new Promise((r) => (patience = setTimeout(r, this.port.timeoutMs)))])
    clearTimeout(patience)
    this.mark('restored')
    if (this.port.needsApp) this.send('release', this.others, ['migrated'], 'continue')
    if (stopped.length) this.port.signal('SIGCONT', stopped)
    this.cleanup(this.req.keepImages)
    const failed = moved.filter((m) => m.to !== this.req.moves.find((x) => x.rank === m.rank)!.to)
    if (failed.length) {
      this.state('Error')
      throw new ActionableError(`migration of job ${this.port.jobid}: ${failed.map((m) => `rank ${m.rank} could not start on its target and was restored on ${m.to} (${this.rolledBack.get(m.rank)})`).join('; ')}`)
    }
    this.state('Finished')
    const bytes = moved.reduce((a, m) => a + m.bytes, 0)
    return { moves: moved, bytes, totalMs: Math.round(performance.now() - this.t0), timing: this.marks }
  }

  /** The mover's old self ends on its source (TERM released it); one that does not is killed. */
  private async ended(left: Promise<RankExit>, rank: number, node: string): Promise<void> {
    const late = setTimeout(() => this.port.moves.kill(rank, node), this.port.graceMs)
    await left
    clearTimeout(late)
  }

  /** Start a mover on its target; if that fails, on its source again, from the same image. */
  private async arrive(rank: number, from: string, to: string, oldPid: number): Promise<MovedRank> {
    const image = { dir: join(this.dir, `rank_${rank}`), files: this.captured.get(rank)!.files }
    const bytes = image.files.reduce((a, f) => a + f.size, 0)
    const done = (node: string, newPid: number): MovedRank => {
      this.port.moves.settle(rank)
      return { rank, from, to: node, oldPid, newPid, bytes, downtimeMs: Math.round(performance.now() - this.t0) }
    }
    // With an app-level CRS the restore hook is the app's onRestart, run after the process
    // started: the restore succeeded only once the app says INIT (a throwing onRestart must roll
    // back, not end the job as the rank's failure).
    const within = this.port.needsApp ? this.port.timeoutMs : undefined
    try {
      return done(to, await this.port.moves.arrive(rank, to, image, within))
    } catch (err) {
      this.progress?.('Error', Math.round(performance.now() - this.t0))
      this.rolledBack.set(rank, `${to}: ${errorMessage(err)}`)
      try {
        return done(from, await this.port.moves.arrive(rank, from, image, within))
      } catch (again) {
        this.port.moves.settle(rank)
        throw new ActionableError(`migration of job ${this.port.jobid}: rank ${rank} could not start on ${to} (${errorMessage(err)}) nor again on ${from} (${errorMessage(again)})`)
      }
    }
  }

  private cleanup(keep: boolean): void {
    for (const rx of this.receivers.values()) void rx.abort('migration over')
    if (!keep) rmSync(this.dir, { recursive: true, force: true })
  }
}
