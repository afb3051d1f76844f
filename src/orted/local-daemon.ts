/**
 * The node side of one job on one node: fork its ranks through the job's CRS hooks, pump their
 * output, report exits, deliver signals and stdin, and run the node's share of its checkpoints
 * (LocalSnapc). `ompx run` serves its own node with one in-process; `ompx orted` keeps one per
 * job behind the wire. Either way the HNP sees the node contract (src/node/contract.ts).
 */
import type { JobIdentity, LaunchSpec, NodeJob, NodeJobEvents } from '../node/contract'
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { RankProcess } from '../runtime/rank-process'
import type { FileReceiver } from '../sstore/file-receiver'
import { receiverSink } from '../sstore/sinks'
import type { OutputTail, SnapshotSink } from '../sstore/types'
import type { MessageOf, SnapcToNode } from '../wire/messages'
import { OutputTails } from './output-tails'
import { rankEnd } from './rank-end'
import { Reaper } from './reaper'
import { LocalSnapc } from './snapc/local-snapc'
import type { SnapshotTarget } from './snapc/rank-capture'
import { PmiServer } from './pmi/pmi-server'
import { crsOf, startRank, type RankStarter } from './rank-start'

/** What a node needs to run a job's ranks and coordinate its checkpoints. */
export interface JobNodeContext {
  jobid: string
  /** Node-local scratch (stage store, restart staging). */
  nodeDir: string
  /** The job's session directory on this node: the app socket lives here. */
  sessionDir: string
  registry: Registry
  params: Params
  /** This node's address: where a PMI server in port mode listens. */
  address: string
  /** Where captured files go when the store is not direct (the HNP's receiver for that seq). */
  snapshotSink(target: SnapshotTarget): SnapshotSink
}

export class LocalDaemon implements NodeJob {
  /** It runs in the process of whoever drives it (for `ompx run`, the HNP's own). */
  readonly inProcess = true
  private procs = new Map<number, { proc: RankProcess; spec: LaunchSpec }>()
  private alive = new Set<number>()
  private stdinClosed = new Set<number>()
  private readonly snapc: LocalSnapc
  /** Stdin that arrived while the app socket was still being set up (before the spawn). */
  private earlyStdin = new Map<number, (Uint8Array | null)[]>()
  /** Ranks a `--term` checkpoint is capturing whose CRS ends them at the capture (criu's dump). */
  private termCapture = new Set<number>()
  /** Exits of those ranks, reported once the HNP released (or abandoned) the checkpoint. */
  private heldExits = new Map<number, () => void>()
  /**
   * Ranks being started (a criu restore takes a while), and the signals sent to them meanwhile,
   * delivered as soon as they run: an abort must reach a rank whose start it overtook.
   */
  private starting = new Map<number, NodeJS.Signals[]>()
  /** Each rank's partial output lines, for its snapshots. */
  private tails = new OutputTails()
  /** Per rank: resolves once its process exited and its output is drained (rank-end.ts). */
  private drained = new Map<number, Promise<unknown>>()
  /** The job's PMI server on this node (MPI programs find their peers through it). */
  private readonly pmi: PmiServer
  /** The MPMD app context of each rank started here (PMI's appnum). */
  private appOf = new Map<number, number>()
  /** What rank-start.ts needs to start a rank here. */
  private readonly starter: RankStarter

  constructor(
    readonly node: string,
    private events: NodeJobEvents,
    private ctx: JobNodeContext,
  ) {
    this.snapc = new LocalSnapc({
      ...ctx,
      node,
      report: (m) => this.events.report?.(m),
      pidOf: (rank) => (this.alive.has(rank) ? this.procs.get(rank)?.proc.pid : undefined),
      outputTail: (rank) => this.outputTail(rank),
    })
    this.pmi = new PmiServer({ jobid: ctx.jobid, node, address: ctx.address, report: (m) => this.events.report?.(m), localRanks: () => this.running() })
    this.starter = { node, sessionDir: ctx.sessionDir, registry: ctx.registry, snapc: this.snapc, pmi: this.pmi }
  }

  /**
   * A captured rank's partial output lines. A rank its CRS ended at a `--term` capture is read to
   * the end of its output first (what it wrote before the dump may still be in its pipes).
   */
  private async outputTail(rank: number): Promise<OutputTail | undefined> {
    if (this.termCapture.has(rank)) await this.drained.get(rank)
    return this.tails.of(rank)
  }

  /**
   * Start every rank of this node, or none: when one cannot start (program missing, a criu
   * restore refused), those already started are killed unreported and the call rejects.
   */
  async launch(job: JobIdentity, specs: LaunchSpec[], verified?: Promise<void>): Promise<void> {
    // Before the first await: a signal that arrives from now on is for these ranks too.
    for (const s of specs) this.starting.set(s.proc.rank, [])
    for (const s of specs) this.appOf.set(s.proc.rank, s.proc.app)
    if (job.pmi) {
      const { size, universeSize } = job
      this.pmi.setJob({ jobid: job.jobid, size, universeSize, processMapping: job.pmi.processMapping, appOf: (r) => this.appOf.get(r) ?? 0 }, job.pmi.preput)
    }
    const listening = this.snapc.start()
    const started = await Promise.allSettled(
      specs.map(async (spec) => {
        await listening
        return startRank(this.starter, job, spec, verified)
      }),
    )
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) {
      for (const s of specs) this.starting.delete(s.proc.rank)
      const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      for (const p of ok) p.signal('SIGKILL')
      await Promise.all(ok.map((p) => p.exited))
      throw failed.reason
    }
    specs.forEach((spec, i) => this.track(spec, (started[i] as PromiseFulfilledResult<RankProcess>).value))
  }

  private track(spec: LaunchSpec, proc: RankProcess): void {
    const rank = spec.proc.rank
    for (const g of proc.groups) Reaper.get().add(g)
    this.procs.set(rank, { proc, spec })
    this.alive.add(rank)
    const missed = this.starting.get(rank) ?? []
    this.starting.delete(rank)
    this.events.launched?.(rank, proc.pid)
    for (const sig of missed) proc.signal(sig)
    for (const data of this.earlyStdin.get(rank) ?? []) this.stdin(rank, data)
    this.earlyStdin.delete(rank)
    // The exit comes from the process, not from EOF (rank-end.ts): output first, then the exit.
    // The rank's output may be held back by a slow consumer (events.output's promise).
    this.tails.forget(rank)
    const ended = rankEnd(proc, (stream, chunk) => {
      this.tails.note(rank, stream, chunk)
      return this.events.output(rank, stream, chunk)
    })
    this.drained.set(rank, ended)
    void ended.then((exit) => {
      for (const g of proc.groups) Reaper.get().remove(g)
      if (exit.error) this.events.output(rank, 'stderr', new TextEncoder().encode(`ompx: rank ${rank} on node ${this.node}: ${exit.error}\n`))
      const report = () => {
        this.alive.delete(rank)
        this.pmi.rankGone(rank, exit.code === 0 && !exit.signal)
        if (this.running().length === 0) this.snapc.close()
        this.events.exit({ rank, pid: proc.pid, node: this.node, code: exit.code, signal: exit.signal })
      }
      if (this.termCapture.has(rank)) this.heldExits.set(rank, report)
      else report()
    })
  }

  deliver(msg: SnapcToNode): void {
    if (msg.t === 'hnp.fence' || msg.t === 'hnp.name' || msg.t === 'hnp.spawned') return this.pmi.deliver(msg)
    if (msg.t === 'hnp.ckpt') this.followCheckpoint(msg)
    this.snapc.handle(msg)
  }

  /** Where a restarting rank's image lands when it is staged to this node before its launch. */
  stagingReceiver(rank: number): FileReceiver {
    return this.snapc.stagingReceiver(rank)
  }

  imageSink(rank: number): SnapshotSink {
    return receiverSink(this.stagingReceiver(rank))
  }

  /** The job is over on this node: stop listening, drop tokens, staged images and restore dirs. */
  close(): void {
    this.snapc.close()
    this.pmi.close()
  }

  /**
   * A rank whose CRS ends it at a `--term` capture (crs criu: the dump kills the tree) dies
   * before the HNP knows the checkpoint is good: its exit is held until the release (the job is then ending and the exit
   * counts as checkpointed-and-terminated) or the abort (then it is a loss, reported as such).
   * The HNP marks the job as ending right after sending the release, hence the timer.
   */
  private followCheckpoint(msg: MessageOf<'hnp.ckpt'>): void {
    if (msg.op === 'capture' && msg.options.includes('term')) {
      for (const rank of msg.ranks) {
        const spec = this.procs.get(rank)?.spec
        if (spec && crsOf(this.ctx.registry, spec).captureEndsRankOnTerm) this.termCapture.add(rank)
      }
    } else if (msg.op === 'release' || msg.op === 'abort') {
      const held = [...this.heldExits.values()]
      this.termCapture.clear()
      this.heldExits.clear()
      if (held.length) setTimeout(() => held.forEach((report) => report()), 0)
    }
  }

  pids(): Map<number, number> {
    return new Map([...this.procs].map(([rank, p]) => [rank, p.proc.pid]))
  }

  /** Ranks running or being started. */
  running(): number[] {
    return [...this.alive, ...this.starting.keys()]
  }

  /** Ranks here always report their exit: nothing to forget. */
  forget(): void {}

  /**
   * Job control reaches each rank's whole process group, USR1/USR2 the rank alone (RankProcess.signal).
   * A rank still being started gets the signal once it runs (see `starting`).
   */
  signal(sig: NodeJS.Signals, ranks?: number[]): void {
    for (const rank of ranks ?? this.running()) {
      if (this.alive.has(rank)) this.procs.get(rank)?.proc.signal(sig)
      else this.starting.get(rank)?.push(sig)
    }
  }

  stdin(rank: number, data: Uint8Array | null): void {
    if (!this.procs.has(rank)) {
      const q = this.earlyStdin.get(rank) ?? []
      q.push(data)
      this.earlyStdin.set(rank, q)
      return
    }
    const sink = this.procs.get(rank)?.proc.stdin
    if (!sink || !this.alive.has(rank)) return
    // A rank that stops reading (head -n 1) closes its end: EPIPE, sync or async. What it did
    // not read is dropped, as with mpirun; the job goes on.
    if (this.stdinClosed.has(rank)) return
    const closed = () => void this.stdinClosed.add(rank)
    try {
      if (data) {
        Promise.resolve(sink.write(data)).catch(closed)
        Promise.resolve(sink.flush()).catch(closed)
      } else {
        closed()
        Promise.resolve(sink.end()).catch(() => {})
      }
    } catch {
      closed()
    }
  }
}
