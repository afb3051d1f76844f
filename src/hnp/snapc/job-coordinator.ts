/**
 * Everything checkpoint/restart about one running job, on the HNP's side: the app services
 * (INIT/FIN, kv, barriers, request_op), the global coordinator, periodic checkpoints, and the
 * images of a restarted job (staged to nodes that cannot read the global store). The job runner
 * forwards node reports here and asks it how to start each rank.
 */
import { errorMessage } from '../../errors'
import { LocalDaemon, type Daemon } from '../../orted/local-daemon'
import type { Registry } from '../../plugins/registry'
import type { ProcInfo } from '../../runtime/job'
import { sendFiles } from '../../sstore/file-sender'
import type { SeqMeta } from '../../sstore/types'
import type { HnpToNode, NodeToHnp } from '../../wire/messages'
import { AppServices } from './app-services'
import { GlobalSnapc, type JobPort, type SnapshotPlan } from './global-snapc'

/** A job started from a snapshot: which seq, and where each rank's image is in the global store. */
export interface RestartImages {
  seq: SeqMeta
  rankDir(rank: number): string
}

export interface CoordinatorSpec {
  registry: Registry
  crs: string
  plan: SnapshotPlan
  restart?: RestartImages
  /** Periodic checkpoints (ompx run --ckpt-interval), seconds. */
  intervalSec?: number
}

export interface RunnerPort extends JobPort {
  deliver(node: string, msg: HnpToNode): void
  say(msg: string): void
}

export class JobCoordinator {
  readonly services: AppServices
  readonly snapc: GlobalSnapc
  private periodic?: Timer
  private staged = new Set<number>()

  constructor(
    private spec: CoordinatorSpec,
    private port: RunnerPort,
  ) {
    this.services = new AppServices(
      {
        size: port.procs().length,
        reply: (rank, id, ok, value, text) => {
          const node = port.procs()[rank]?.node
          if (node) port.deliver(node, { t: 'hnp.app', jobid: port.jobid, rank, id, ok, value, text })
        },
        checkpoint: async (term) => {
          const r = await this.snapc.request({ term, stop: false, origin: 'app' })
          return `${r.seq} ${r.ref}`
        },
        checkpointRunning: () => this.snapc.inProgress,
      },
      spec.restart?.seq.kv,
    )
    this.snapc = new GlobalSnapc(port, this.services, spec.registry, spec.plan)
  }

  /** Resolves when the sender may go on (file chunks wait for the disk). */
  report(msg: NodeToHnp): Promise<void> | void {
    switch (msg.t) {
      case 'orted.ckpt':
        return this.snapc.report(msg)
      case 'orted.file':
        return this.snapc.file(msg)
      case 'orted.app':
        return this.services.request(msg)
      case 'orted.app-link':
        return this.services.link(msg.rank, msg.up)
    }
  }

  /** How a rank starts: fresh, or from its image (read in place, or staged to its node first). */
  restartOf(proc: ProcInfo, daemon: Daemon): { dir: string; staged: boolean } | undefined {
    const images = this.spec.restart
    if (!images) return undefined
    const direct = this.spec.registry.select('sstore', this.spec.plan.sstore).direct
    // A node served in-process shares our file system; a central store is shared by definition.
    const staged = !direct && !(daemon instanceof LocalDaemon)
    if (staged) this.staged.add(proc.rank)
    return { dir: staged ? '' : images.rankDir(proc.rank), staged }
  }

  /** Send staged ranks' images to their nodes before they are launched. */
  async stageImages(daemons: Map<string, Daemon>): Promise<void> {
    const images = this.spec.restart
    if (!images) return
    for (const rank of this.staged) {
      const meta = images.seq.ranks.find((m) => m.rank === rank)
      const node = this.port.procs()[rank]!.node
      const daemon = daemons.get(node)!
      await sendFiles(images.rankDir(rank), meta?.files ?? [], {
        write: async (path, offset, data, codec, last) => {
          daemon.deliver({ t: 'hnp.file', jobid: this.port.jobid, rank, path, offset, data, codec, last })
          await daemon.drained?.()
        },
      })
    }
  }

  start(): void {
    const every = this.spec.intervalSec
    if (!every) return
    let warned = false
    this.periodic = setInterval(() => {
      // Not ready yet (before INIT) or busy: simply wait for the next tick.
      if (this.snapc.inProgress || this.snapc.whyNot()) return
      this.snapc.request({ term: false, stop: false, origin: 'periodic' }).catch((err) => {
        if (!warned) this.port.say(`periodic checkpoint failed: ${errorMessage(err)}`)
        warned = true
      })
    }, every * 1000)
    this.periodic.unref()
  }

  stop(): void {
    clearInterval(this.periodic)
  }

  rankGone(rank: number): void {
    this.services.rankGone(rank)
    this.snapc.rankGone(rank)
  }

  settled(): Promise<void> {
    return this.snapc.settled()
  }
}
