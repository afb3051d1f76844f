/**
 * Runs one job to completion from the HNP's side: launches every rank through its node's
 * daemon, routes output and stdin, applies the error manager's policy, the timeout and the
 * user's signals, and returns the job's exit status.
 */
import type { LaunchSpec, NodeJob, RankExit } from '../../node/contract'
import { describeExit, FailureLedger, isFailure, signalNumber } from '../errmgr/exit-policy'
import { OutputRouter, type OutputSink } from '../output/output-router'
import { JobCoordinator } from '../snapc/job-coordinator'
import { RankMoves } from './rank-moves'
import { forwardStdin } from './stdin'
import { askDpm, ranks, TIMEOUT_STATUS, type JobSpec } from './job-spec'
import { launchesByNode, launchHeader, prepareRestart } from './launch-plan'

export class JobRunner {
  private router: OutputSink
  private daemons = new Map<string, NodeJob>()
  private ledger = new FailureLedger()
  private exited = 0
  private aborting: null | { status?: number } = null
  private killTimer?: Timer
  private done!: (status: number) => void
  /** Checkpoints, app coordinators and restart images of this job. */
  readonly coord: JobCoordinator
  /** Why the job was aborted by a failure (a rank died, a node was lost): recovery may restart it. */
  failure?: string
  /** The user ended the job (a signal): never recover from that. */
  interrupted = false
  /** --timeout ended the job: the jobs it spawned end with it (dpm/family.ts). */
  timedOut = false
  /** Ranks migrating between nodes (rank-moves.ts). */
  private readonly moves: RankMoves
  /** Why a restart's images failed verification (NodeJob.launch's `verified`): said once, alone. */
  private badImages: unknown = null

  constructor(private spec: JobSpec) {
    this.coord = new JobCoordinator(spec.cr, {
      jobid: spec.jobid,
      procs: () => this.spec.procs,
      deliver: (node, msg) => this.daemons.get(node)?.deliver(msg),
      broadcast: (msg) => {
        for (const d of this.daemons.values()) d.deliver(msg)
      },
      signal: (sig, ranks) => this.signalRanks(sig, ranks),
      endAfterCheckpoint: (status) => this.endAfterCheckpoint(status),
      // The program asked for the end (MPI_Abort): not a failure to recover from (no `failure`).
      abort: (status, why) => {
        if (this.aborting) return
        const others = this.runningCount()
        this.say(`${why}; aborting the job with status ${status}${others ? ` (terminating ${ranks(others)})` : ''}`)
        this.abort(status)
      },
      ending: () => this.aborting !== null,
      say: (msg) => this.say(msg),
      workDir: spec.sessionDir,
      pid: (rank) => this.daemons.get(this.spec.procs[rank]?.node ?? '')?.pids().get(rank) ?? 0,
      killGraceMs: spec.killGraceSec * 1000,
      moves: (this.moves = new RankMoves(spec, (name) => this.node(name))),
    })
    this.router = spec.router ?? new OutputRouter(spec.output)
    // Our stdout's reader is gone (`ompx run ... | head`): like mpirun dying of SIGPIPE, end the
    // job rather than let ranks produce output nobody can see.
    this.router.onBroken?.(() => this.abort(128 + signalNumber('SIGPIPE')))
  }

  async run(): Promise<number> {
    const finished = new Promise<number>((resolve) => (this.done = resolve))
    const byNode = launchesByNode(this.spec)
    await prepareRestart(this.spec.procs, byNode, this.coord, {
      node: (name) => this.node(name),
      daemons: this.daemons,
      router: this.router,
      badImages: (err) => {
        this.badImages = err
        this.say(err instanceof Error ? err.message : String(err))
        this.abort(1)
      },
    })
    const job = launchHeader(this.spec)
    for (const [node, specs] of byNode) {
      this.daemons.get(node)!.launch(job, specs, this.coord.verified).catch((err) => this.launchFailed(node, specs, err))
    }
    this.coord.start()
    forwardStdin(this.spec.stdin, this.spec.procs, (p, data) => this.daemons.get(p.node)?.stdin(p.rank, data))
    if (this.spec.timeoutSec) {
      setTimeout(() => {
        this.say(`job ${this.spec.jobid} exceeded its --timeout of ${this.spec.timeoutSec} s; killing ${ranks(this.runningCount())}`)
        this.timedOut = true
        this.abort(TIMEOUT_STATUS)
      }, this.spec.timeoutSec * 1000).unref()
    }
    return finished
  }

  /** The job's share of `name`, attached on first use (a migration may bring ranks to a new node). */
  private node(name: string): NodeJob {
    const known = this.daemons.get(name)
    if (known) return known
    const handle = this.spec.nodes.get(name)
    if (!handle) throw new Error(`no daemon for node ${name}`)
    const daemon = handle.attach(
      this.spec.jobid,
      {
        output: (rank, stream, chunk) => this.router.data(rank, stream, chunk),
        exit: (info) => this.onExit(info),
        lost: (lostNode, reason) => this.onNodeLost(lostNode, reason),
        launched: (rank, pid) => {
          this.moves.launched(rank, name, pid)
          this.spec.onLaunched?.(rank, pid)
        },
        report: (msg) => (msg.t === 'orted.name' || msg.t === 'orted.spawn' ? askDpm(this.spec, msg, (a) => this.daemons.get(name)?.deliver(a)) : this.coord.report(msg)),
        snapshotReceiver: (target) => this.coord.snapshotReceiver(target),
      },
      this.spec.sessionDir,
    )
    this.daemons.set(name, daemon)
    return daemon
  }

  /** End the job for a reason outside it (a job of its family failed): as a failing rank would. */
  abortJob(status: number, why: string): void {
    if (this.aborting) return
    this.failure = why
    const others = this.runningCount()
    this.say(`${why}; aborting job ${this.spec.jobid} with status ${status}${others ? ` (terminating ${ranks(others)})` : ''}`)
    this.abort(status)
  }

  /** SIGINT/SIGTERM from the user: terminate gracefully; a second one kills at once. */
  interrupt(sig: NodeJS.Signals): void {
    this.interrupted = true
    if (this.aborting) {
      this.say(`${sig} again: killing ${ranks(this.runningCount())} now`)
      this.signalAll('SIGKILL')
      return
    }
    this.say(`caught ${sig}; sending SIGTERM to ${ranks(this.runningCount())} (repeat to kill them at once)`)
    this.abort(128 + signalNumber(sig))
  }

  /** Deliver a signal to every running rank (SIGUSR1, SIGCONT, SIGSTOP ...). */
  signalAll(sig: NodeJS.Signals): void {
    for (const d of this.daemons.values()) d.signal(sig)
  }

  private signalRanks(sig: NodeJS.Signals, ranks?: number[]): void {
    if (!ranks) return this.signalAll(sig)
    for (const [node, d] of this.daemons) {
      const mine = ranks.filter((r) => this.spec.procs[r]?.node === node)
      if (mine.length) d.signal(sig, mine)
    }
  }

  /** This node could not start its ranks (program missing there): they count as failed to start. */
  private launchFailed(node: string, specs: LaunchSpec[], err: unknown): void {
    if (err !== this.badImages) this.say(`node ${node}: ${err instanceof Error ? err.message : String(err)}`)
    for (const s of specs) this.onExit({ rank: s.proc.rank, pid: 0, node, code: 127, signal: null })
  }

  /**
   * `ompx checkpoint --term`: the ranks were released with TERM and finish on their own; the
   * job ends with status 0 (a checkpoint on a signal: 75, "resume me"). Stragglers get SIGTERM
   * after kill_grace, then SIGKILL.
   */
  private endAfterCheckpoint(status = 0): void {
    if (this.aborting) return
    this.aborting = { status }
    this.say(`job ${this.spec.jobid} terminating after its checkpoint (${status === 0 ? '--term' : `exit status ${status}`})`)
    const grace = this.spec.killGraceSec * 1000
    this.killTimer = setTimeout(() => {
      this.signalAll('SIGTERM')
      this.killTimer = setTimeout(() => this.signalAll('SIGKILL'), grace)
      this.killTimer.unref()
    }, grace)
    this.killTimer.unref()
  }

  private onExit(e: RankExit): void {
    if (this.moves.swallow(e)) return
    const carried = this.coord.carriedTail(e.rank, 'term')
    for (const stream of ['stdout', 'stderr'] as const) this.router.end(e.rank, stream, carried?.[stream] ? Buffer.from(carried[stream], 'base64') : undefined)
    this.exited++
    this.spec.onRankExit?.(e)
    this.coord.rankGone(e.rank)
    const wasAborting = this.aborting !== null
    this.ledger.record(e, wasAborting)
    if (isFailure(e) && !wasAborting) {
      if (this.spec.errmgrContinue) {
        this.say(`${describeExit(e)}; the other ranks continue (errmgr_continue)`)
      } else {
        const others = this.runningCount()
        this.failure = describeExit(e)
        this.say(`${describeExit(e)}; aborting the job${others ? ` (terminating ${ranks(others, 'other ')})` : ''}`)
        this.abort()
      }
    }
    if (this.exited === this.spec.procs.length) void this.finish()
  }

  /** A whole node is gone: its ranks count as failed, and the job ends (no recovery yet). */
  private onNodeLost(node: string, reason: string): void {
    this.coord.nodeLost(node, this.spec.procs.filter((p) => p.node === node).map((p) => p.rank))
    const daemon = this.daemons.get(node)
    const lost = daemon?.running() ?? []
    if (lost.length === 0 && this.exited === this.spec.procs.length) return
    if (!this.aborting) this.failure = `node ${node} lost`
    this.say(`node ${node} lost: ${reason}; ${ranks(lost.length)} there ${lost.length === 1 ? 'is' : 'are'} gone; aborting the job`)
    this.abort(this.aborting?.status ?? 1)
    daemon?.forget(lost)
    for (const rank of lost) {
      this.coord.rankGone(rank)
      this.router.end(rank, 'stdout')
      this.router.end(rank, 'stderr')
      this.exited++
    }
    if (this.exited === this.spec.procs.length) void this.finish()
  }

  private abort(status?: number): void {
    if (this.aborting) return
    this.aborting = { status }
    this.signalAll('SIGTERM')
    this.killTimer = setTimeout(() => this.signalAll('SIGKILL'), this.spec.killGraceSec * 1000)
    this.killTimer.unref()
  }

  private async finish(): Promise<void> {
    // A --term checkpoint may still be syncing to the global store: its daemons must stay up.
    await this.coord.settled()
    this.coord.stop()
    clearTimeout(this.killTimer)
    for (const node of this.daemons.keys()) this.spec.nodes.get(node)?.detach(this.spec.jobid)
    await this.router.close()
    const status = this.aborting?.status ?? this.ledger.status()
    this.done(status)
  }

  private runningCount(): number {
    let n = 0
    for (const d of this.daemons.values()) n += d.running().length
    return n
  }

  /** An ompx message, queued behind rank stderr so it reads in order. */
  say(msg: string): void {
    if (this.spec.quiet && !msg.includes('rank')) return
    this.router.message(`${this.spec.who ?? 'ompx run'}: ${msg}\n`)
  }
}
