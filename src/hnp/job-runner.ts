/**
 * Runs one job to completion from the HNP's side: launches every rank through its node's
 * daemon, routes output and stdin, applies the error manager's policy, the timeout and the
 * user's signals, and returns the job's exit status.
 */
import type { RunRequest } from '../args/mpirun'
import { rankEnv } from '../orted/rank-env'
import type { Daemon, LaunchSpec, RankExit } from '../orted/local-daemon'
import type { AppContext, ProcInfo } from '../runtime/job'
import { describeExit, FailureLedger, isFailure, signalNumber } from './errmgr'
import type { NodeHandle } from './node-pool'
import { OutputRouter, type OutputOptions, type OutputSink } from './output'

export interface JobSpec {
  jobid: string
  apps: AppContext[]
  procs: ProcInfo[]
  sessionDir: string
  output: OutputOptions
  stdin: RunRequest['stdin']
  timeoutSec?: number
  errmgrContinue: boolean
  killGraceSec: number
  quiet: boolean
  /** How to reach each node that has ranks. */
  nodes: Map<string, NodeHandle>
  /** Output sink; defaults to this process's stdout/stderr. */
  router?: OutputSink
  /** Called with each rank's pid once its node reports the launch. */
  onLaunched?(rank: number, pid: number): void
  onRankExit?(e: RankExit): void
}

/** Exit status for a job killed by --timeout (ETIMEDOUT, as the issue and scripts expect). */
export const TIMEOUT_STATUS = 110

export class JobRunner {
  private router: OutputSink
  private daemons = new Map<string, Daemon>()
  private ledger = new FailureLedger()
  private exited = 0
  private aborting: null | { status?: number } = null
  private killTimer?: Timer
  private done!: (status: number) => void

  constructor(private spec: JobSpec) {
    this.router = spec.router ?? new OutputRouter(spec.output)
    // Our stdout's reader is gone (`ompx run ... | head`): like mpirun dying of SIGPIPE, end the
    // job rather than let ranks produce output nobody can see.
    this.router.onBroken?.(() => this.abort(128 + signalNumber('SIGPIPE')))
  }

  run(): Promise<number> {
    const finished = new Promise<number>((resolve) => (this.done = resolve))
    const byNode = new Map<string, LaunchSpec[]>()
    for (const proc of this.spec.procs) {
      const app = this.spec.apps[proc.app]!
      const list = byNode.get(proc.node) ?? []
      list.push({
        proc,
        argv: app.argv,
        cwd: app.cwd,
        env: rankEnv(process.env, app, proc, {
          jobid: this.spec.jobid,
          size: this.spec.procs.length,
          universeSize: this.spec.procs.length,
          sessionDir: this.spec.sessionDir,
        }),
        stdin: this.readsStdin(proc.rank),
      })
      byNode.set(proc.node, list)
    }
    for (const [node, specs] of byNode) {
      const handle = this.spec.nodes.get(node)
      if (!handle) throw new Error(`no daemon for node ${node}`)
      const daemon = handle.attach(this.spec.jobid, {
        output: (rank, stream, chunk) => this.router.data(rank, stream, chunk),
        exit: (info) => this.onExit(info),
        lost: (lostNode, reason) => this.onNodeLost(lostNode, reason),
        launched: (rank, pid) => this.spec.onLaunched?.(rank, pid),
      })
      this.daemons.set(node, daemon)
      daemon.launch(specs)
    }
    this.forwardStdin()
    if (this.spec.timeoutSec) {
      setTimeout(() => {
        this.say(`job ${this.spec.jobid} exceeded its --timeout of ${this.spec.timeoutSec} s; killing ${ranks(this.runningCount())}`)
        this.abort(TIMEOUT_STATUS)
      }, this.spec.timeoutSec * 1000).unref()
    }
    return finished
  }

  /** SIGINT/SIGTERM from the user: terminate gracefully; a second one kills at once. */
  interrupt(sig: NodeJS.Signals): void {
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

  private onExit(e: RankExit): void {
    this.router.end(e.rank, 'stdout')
    this.router.end(e.rank, 'stderr')
    this.exited++
    this.spec.onRankExit?.(e)
    const wasAborting = this.aborting !== null
    this.ledger.record(e, wasAborting)
    if (isFailure(e) && !wasAborting) {
      if (this.spec.errmgrContinue) {
        this.say(`${describeExit(e)}; the other ranks continue (errmgr_continue)`)
      } else {
        const others = this.runningCount()
        this.say(`${describeExit(e)}; aborting the job${others ? ` (terminating ${ranks(others, 'other ')})` : ''}`)
        this.abort()
      }
    }
    if (this.exited === this.spec.procs.length) void this.finish()
  }

  /** A whole node is gone: its ranks count as failed, and the job ends (no recovery yet). */
  private onNodeLost(node: string, reason: string): void {
    const daemon = this.daemons.get(node)
    const lost = daemon?.running() ?? []
    if (lost.length === 0 && this.exited === this.spec.procs.length) return
    this.say(`node ${node} lost: ${reason}; ${ranks(lost.length)} there ${lost.length === 1 ? 'is' : 'are'} gone; aborting the job`)
    this.abort(this.aborting?.status ?? 1)
    daemon?.forget?.(lost)
    for (const rank of lost) {
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

  private readsStdin(rank: number): boolean {
    const s = this.spec.stdin
    return s.kind === 'all' || (s.kind === 'rank' && s.rank === rank)
  }

  private forwardStdin(): void {
    const targets = this.spec.procs.filter((p) => this.readsStdin(p.rank))
    if (targets.length === 0) return
    const send = (data: Uint8Array | null) => {
      for (const p of targets) this.daemons.get(p.node)?.stdin(p.rank, data)
    }
    void (async () => {
      try {
        for await (const chunk of Bun.stdin.stream()) send(chunk)
      } catch {
        // stdin unreadable (closed terminal): treat as end of input.
      }
      send(null)
    })()
  }

  /** An ompx message, queued behind rank stderr so it reads in order. */
  private say(msg: string): void {
    if (this.spec.quiet && !msg.includes('rank')) return
    this.router.message(`ompx run: ${msg}\n`)
  }
}

/** "1 rank", "3 other ranks". */
function ranks(n: number, adj = ''): string {
  return `${n} ${adj}rank${n === 1 ? '' : 's'}`
}
