/**
 * The node daemon's process work: fork ranks, pump their output, report exits, deliver signals.
 * `ompx run` runs one in-process for its own node; `ompx orted` will wrap the same class behind
 * the wire protocol, so the HNP talks to every node through the `Daemon` interface.
 */
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { ProcInfo } from '../runtime/job'
import type { HnpToNode, MessageOf, NodeToHnp } from '../wire/messages'
import { criuSetup, launchCriuRank, restoreCriuRank } from '../../plugins/crs/criu/rank'
import type { CriuParams } from '../../plugins/crs/criu/params'
import { spawnRank, type RankProcess } from '../runtime/rank-process'
import { Reaper } from './reaper'
import { LocalSnapc } from './snapc/local-snapc'

export interface LaunchSpec {
  proc: ProcInfo
  argv: string[]
  cwd: string
  env: Record<string, string>
  /** Whether this rank reads forwarded stdin. */
  stdin: boolean
  /** Set when the rank restarts from a snapshot image (see LocalSnapc.rankEnv). */
  restart?: { dir: string; staged: boolean }
  /** The job's CRS. */
  crs?: string
}

/** What a node needs to coordinate a job's checkpoints (absent: plain launching only). */
export interface JobNodeContext {
  jobid: string
  nodeDir: string
  sessionDir: string
  registry: Registry
  params: Params
  /** File chunks to the HNP with flow control; default: report() and go on. */
  sendFile?(msg: MessageOf<'orted.file'>): Promise<void>
  /** True when sendFile is done with a chunk's data once it resolves (see LocalSnapc). */
  sendFileReleasesData?: boolean
}

export interface RankExit {
  rank: number
  pid: number
  node: string
  /** Exit code, or null when a signal ended the rank. */
  code: number | null
  signal: NodeJS.Signals | null
}

export interface DaemonEvents {
  output(rank: number, stream: 'stdout' | 'stderr', chunk: Uint8Array): void
  /** Called once per rank, after all its output has been delivered. */
  exit(info: RankExit): void
  /** The rank is running with this pid (on its node). */
  launched?(rank: number, pid: number): void
  /** Checkpoint and app-coordinator traffic for the HNP. */
  report?(msg: NodeToHnp): Promise<void> | void
}

export interface Daemon {
  readonly node: string
  /** Start ranks; rejects when a program cannot be started on this node. */
  launch(specs: LaunchSpec[]): Promise<void>
  /** Checkpoint and app-coordinator traffic from the HNP. */
  deliver(msg: HnpToNode): void
  /** Resolves when what was delivered has been handed on (flow control for big transfers). */
  drained?(): Promise<void>
  pids(): Map<number, number>
  signal(sig: NodeJS.Signals, ranks?: number[]): void
  stdin(rank: number, data: Uint8Array | null): void
  running(): number[]
  /** Stop tracking ranks that can no longer report (their node is gone). */
  forget?(ranks: number[]): void
}

export class LocalDaemon implements Daemon {
  private procs = new Map<number, { proc: RankProcess; spec: LaunchSpec }>()
  private alive = new Set<number>()
  private stdinClosed = new Set<number>()
  private snapc?: LocalSnapc
  /** Stdin that arrived while the app socket was still being set up (before the spawn). */
  private earlyStdin = new Map<number, (Uint8Array | null)[]>()
  /** Ranks a `--term` checkpoint is capturing: crs criu ends them at the dump (SIGKILL). */
  private termCapture = new Set<number>()
  /** Exits of those ranks, reported once the HNP released (or abandoned) the checkpoint. */
  private heldExits = new Map<number, () => void>()
  /**
   * Ranks being started (a criu restore takes a while), and the signals sent to them meanwhile,
   * delivered as soon as they run: an abort must reach a rank whose start it overtook.
   */
  private starting = new Map<number, NodeJS.Signals[]>()

  constructor(
    readonly node: string,
    private events: DaemonEvents,
    private ctx?: JobNodeContext,
  ) {
    if (ctx) {
      const report = (m: NodeToHnp) => this.events.report?.(m)
      this.snapc = new LocalSnapc({
        ...ctx,
        node,
        report,
        // In-process: wait, like a remote daemon would, until the HNP has written what it holds.
        sendFile: ctx.sendFile ?? ((m) => Promise.resolve(report(m))),
        pidOf: (rank) => (this.alive.has(rank) ? this.procs.get(rank)?.proc.pid : undefined),
      })
    }
  }

  /**
   * Start every rank of this node, or none: when one cannot start (program missing, a criu
   * restore refused), those already started are killed unreported and the call rejects.
   */
  async launch(specs: LaunchSpec[]): Promise<void> {
    let criu: CriuParams | undefined
    if (specs.some((s) => s.crs === 'criu')) {
      const setup = criuSetup((k) => this.ctx?.params.get(k))
      if (setup.problem) throw new Error(setup.problem)
      criu = setup.opts
    }
    // Before the first await: a signal that arrives from now on is for these ranks too.
    for (const s of specs) this.starting.set(s.proc.rank, [])
    const listening = this.snapc?.start()
    const started = await Promise.allSettled(
      specs.map(async (spec) => {
        await listening
        return this.start(spec, criu)
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

  private async start(spec: LaunchSpec, criu?: CriuParams): Promise<RankProcess> {
    const rank = spec.proc.rank
    const env = this.snapc ? { ...spec.env, ...(await this.snapc.rankEnv(rank, spec.restart)) } : spec.env
    if (spec.crs !== 'criu') return spawnRank(spec, env)
    if (!spec.restart) return launchCriuRank(spec, env)
    if (!this.snapc) throw new Error(`rank ${rank} on node ${this.node}: a crs criu restart needs the job's node context`)
    return restoreCriuRank(spec, env.OMPX_RESTART_DIR || spec.restart.dir, this.snapc.localRestartDir(rank), criu ?? {})
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
    const pumps = [this.pump(rank, 'stdout', proc.stdout), this.pump(rank, 'stderr', proc.stderr)]
    // Report the exit only after both pipes hit EOF, so no output is lost when ranks exit fast.
    void Promise.all([proc.exited, ...pumps]).then(([exit]) => {
      proc.cleanup()
      for (const g of proc.groups) Reaper.get().remove(g)
      if (exit.error) this.events.output(rank, 'stderr', new TextEncoder().encode(`ompx: rank ${rank} on node ${this.node}: ${exit.error}\n`))
      const report = () => {
        this.alive.delete(rank)
        if (this.running().length === 0) this.snapc?.close()
        this.events.exit({ rank, pid: proc.pid, node: this.node, code: exit.code, signal: exit.signal })
      }
      if (this.termCapture.has(rank)) this.heldExits.set(rank, report)
      else report()
    })
  }

  private async pump(rank: number, stream: 'stdout' | 'stderr', readable: ReadableStream<Uint8Array>) {
    for await (const chunk of readable) this.events.output(rank, stream, chunk)
  }

  deliver(msg: HnpToNode): void {
    if (msg.t === 'hnp.ckpt') this.followCheckpoint(msg)
    this.snapc?.handle(msg)
  }

  /**
   * A crs criu rank captured by a `--term` checkpoint dies at the dump, before the HNP knows the
   * checkpoint is good: its exit is held until the release (the job is then ending and the exit
   * counts as checkpointed-and-terminated) or the abort (then it is a loss, reported as such).
   * The HNP marks the job as ending right after sending the release, hence the timer.
   */
  private followCheckpoint(msg: MessageOf<'hnp.ckpt'>): void {
    if (msg.op === 'capture' && msg.options.includes('term')) {
      for (const rank of msg.ranks) if (this.procs.get(rank)?.spec.crs === 'criu') this.termCapture.add(rank)
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
