/**
 * The node daemon's process work: fork ranks, pump their output, report exits, deliver signals.
 * `ompx run` runs one in-process for its own node; `ompx orted` will wrap the same class behind
 * the wire protocol, so the HNP talks to every node through the `Daemon` interface.
 */
import type { Subprocess } from 'bun'
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { ProcInfo } from '../runtime/job'
import type { HnpToNode, MessageOf, NodeToHnp } from '../wire/messages'
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
  report?(msg: NodeToHnp): void
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
  private procs = new Map<number, { sub: Subprocess<'pipe' | 'ignore', 'pipe', 'pipe'>; spec: LaunchSpec }>()
  private alive = new Set<number>()
  private stdinClosed = new Set<number>()
  private snapc?: LocalSnapc
  /** Stdin that arrived while the app socket was still being set up (before the spawn). */
  private earlyStdin = new Map<number, (Uint8Array | null)[]>()

  constructor(
    readonly node: string,
    private events: DaemonEvents,
    ctx?: JobNodeContext,
  ) {
    if (ctx) {
      const report = (m: NodeToHnp) => this.events.report?.(m)
      this.snapc = new LocalSnapc({
        ...ctx,
        node,
        report,
        sendFile: ctx.sendFile ?? ((m) => (report(m), Promise.resolve())),
        pidOf: (rank) => (this.alive.has(rank) ? this.procs.get(rank)?.sub.pid : undefined),
      })
    }
  }

  async launch(specs: LaunchSpec[]): Promise<void> {
    await this.snapc?.start()
    for (const spec of specs) {
      const env = this.snapc ? { ...spec.env, ...(await this.snapc.rankEnv(spec.proc.rank, spec.restart)) } : spec.env
      // Each rank leads its own process group (setsid) so a signal reaches everything it forked,
      // and a terminal's Ctrl-C reaches only us: we decide what the ranks get.
      const sub = Bun.spawn(spec.argv, {
        cwd: spec.cwd,
        env,
        stdin: spec.stdin ? 'pipe' : 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
        detached: true,
      })
      const rank = spec.proc.rank
      Reaper.get().add(sub.pid)
      this.procs.set(rank, { sub, spec })
      this.alive.add(rank)
      this.events.launched?.(rank, sub.pid)
      for (const data of this.earlyStdin.get(rank) ?? []) this.stdin(rank, data)
      this.earlyStdin.delete(rank)
      const pumps = [this.pump(rank, 'stdout', sub.stdout), this.pump(rank, 'stderr', sub.stderr)]
      // Report the exit only after both pipes hit EOF, so no output is lost when ranks exit fast.
      Promise.all([sub.exited, ...pumps]).then(() => {
        this.alive.delete(rank)
        // Anything the rank left behind in its process group goes with it.
        this.killGroup(sub.pid, 'SIGKILL')
        Reaper.get().remove(sub.pid)
        if (this.alive.size === 0) this.snapc?.close()
        this.events.exit({
          rank,
          pid: sub.pid,
          node: this.node,
          code: sub.signalCode ? null : sub.exitCode,
          signal: (sub.signalCode as NodeJS.Signals | null) ?? null,
        })
      })
    }
  }

  private async pump(rank: number, stream: 'stdout' | 'stderr', readable: ReadableStream<Uint8Array>) {
    for await (const chunk of readable) this.events.output(rank, stream, chunk)
  }

  deliver(msg: HnpToNode): void {
    this.snapc?.handle(msg)
  }

  pids(): Map<number, number> {
    return new Map([...this.procs].map(([rank, p]) => [rank, p.sub.pid]))
  }

  running(): number[] {
    return [...this.alive]
  }

  /**
   * Job control (TERM, KILL, STOP, CONT) goes to the rank's whole process group so nothing it
   * forked is left behind; user signals (USR1/USR2) go to the rank process alone, as a shell
   * would deliver them, so its handlers run and its children are not killed by default action.
   */
  signal(sig: NodeJS.Signals, ranks?: number[]): void {
    const group = sig !== 'SIGUSR1' && sig !== 'SIGUSR2'
    for (const rank of ranks ?? [...this.alive]) {
      const p = this.procs.get(rank)
      if (!p || !this.alive.has(rank)) continue
      if (group) this.killGroup(p.sub.pid, sig)
      else {
        try {
          process.kill(p.sub.pid, sig)
        } catch {
          // Already gone.
        }
      }
    }
  }

  stdin(rank: number, data: Uint8Array | null): void {
    if (!this.procs.has(rank)) {
      const q = this.earlyStdin.get(rank) ?? []
      q.push(data)
      this.earlyStdin.set(rank, q)
      return
    }
    const p = this.procs.get(rank)
    if (!p || !this.alive.has(rank) || typeof p.sub.stdin !== 'object' || !p.sub.stdin) return
    const sink = p.sub.stdin
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

  private killGroup(pid: number, sig: NodeJS.Signals): void {
    try {
      process.kill(-pid, sig)
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}
