/**
 * How the HNP reaches a node: `attach(jobid, events)` gives a per-job `Daemon` for that node.
 * The HNP's own node is served in-process; every other node by an `ompx orted` over the wire
 * (daemon-link.ts). Job code never cares which.
 */
import { join } from 'node:path'
import { LocalDaemon, type Daemon, type DaemonEvents } from '../../orted/local-daemon'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'

export interface JobEvents extends DaemonEvents {
  /** The node's daemon died or went silent: its ranks are gone. */
  lost(node: string, reason: string): void
}

export interface NodeHandle {
  readonly node: string
  /** Local pid of the daemon serving this node (ours when in-process). */
  readonly pid: number
  /** `sessionDir`: the job's session directory on the HNP (in-process nodes use it for ranks). */
  attach(jobid: string, events: JobEvents, sessionDir: string): Daemon
  /** Forget a finished job's state on this node. */
  detach(jobid: string): void
}

export class InProcessNode implements NodeHandle {
  readonly pid = process.pid
  private jobs = new Map<string, LocalDaemon>()

  constructor(
    readonly node: string,
    private ctx: { nodeDirRoot: string; registry: Registry; params: Params },
  ) {}

  attach(jobid: string, events: JobEvents, sessionDir: string): Daemon {
    const { nodeDirRoot, registry, params } = this.ctx
    const d = new LocalDaemon(this.node, events, { jobid, nodeDir: join(nodeDirRoot, this.node), sessionDir, registry, params })
    this.jobs.set(jobid, d)
    return d
  }

  detach(jobid: string): void {
    this.jobs.delete(jobid)
  }

  /** Kill everything still running here (HNP shutdown). */
  killAll(): void {
    for (const d of this.jobs.values()) d.signal('SIGKILL')
  }
}
