/**
 * The HNP's own node, served inside the HNP's process (no `ompx orted`): each job gets a
 * LocalDaemon, which writes its snapshot files straight into the HNP's receivers. The other
 * nodes are daemon links (daemon-link.ts); job code sees both through src/node/contract.ts.
 */
import { join } from 'node:path'
import type { NodeHandle, NodeJob, NodeJobEvents } from '../../node/contract'
import { LocalDaemon } from '../../orted/local-daemon'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import { receiverSink } from '../../sstore/sinks'

export class InProcessNode implements NodeHandle {
  readonly pid = process.pid
  private jobs = new Map<string, LocalDaemon>()

  constructor(
    readonly node: string,
    private ctx: { nodeDirRoot: string; registry: Registry; params: Params; address: string },
  ) {}

  attach(jobid: string, events: NodeJobEvents, sessionDir: string): NodeJob {
    const { nodeDirRoot, registry, params, address } = this.ctx
    const d = new LocalDaemon(this.node, events, {
      jobid,
      nodeDir: join(nodeDirRoot, this.node),
      sessionDir,
      registry,
      params,
      address,
      snapshotSink: (target) => {
        const rx = events.snapshotReceiver?.(target)
        if (!rx) throw new Error(`no checkpoint of ${target.ref} seq ${target.seq} expects files of rank ${target.rank}`)
        return receiverSink(rx)
      },
    })
    this.jobs.set(jobid, d)
    return d
  }

  detach(jobid: string): void {
    this.jobs.get(jobid)?.close()
    this.jobs.delete(jobid)
  }

  /** Kill everything still running here (the HNP is shutting down). */
  shutdown(): void {
    for (const d of this.jobs.values()) d.signal('SIGKILL')
  }
}
