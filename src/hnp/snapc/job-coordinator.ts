/**
 * Everything checkpoint/restart about one running job, on the HNP's side: the app services
 * (INIT/FIN, kv, barriers, request_op), the global coordinator, periodic checkpoints, and the
 * images of a restarted job (staged to nodes that cannot read the global store). The job runner
 * forwards node reports here and asks it how to start each rank.
 */
import { ActionableError, errorMessage } from '../../errors'
import type { NodeJob } from '../../node/contract'
import type { Registry } from '../../plugins/registry'
import type { ProcInfo } from '../../runtime/job'
import type { FileReceiver } from '../../sstore/file-receiver'
import { sendFiles } from '../../sstore/file-sender'
import type { OutputTail, SeqMeta } from '../../sstore/types'
import type { MessageOf, SnapcToNode, NodeToSnapc } from '../../wire/messages'
import { resolvePreferences } from '../mapping/migrate-targets'
import { AppServices, migrationOutcomeText } from './app-services'
import type { MovesPort } from '../job/rank-moves'
import type { MigrationProgress, MigrationRequest, MigrationResult, MigrationView } from './migrate-types'
import { MigrationRound } from './migration'
import { GlobalSnapc, type JobPort, type SnapshotPlan } from './global-snapc'

/** A job started from a snapshot: which seq, and where each rank's image is in the global store. */
export interface RestartImages {
  seq: SeqMeta
  rankDir(rank: number): string
  /** The images' checksums, when they are still being read (GlobalSnapshot.verifyAhead). */
  verified?: Promise<void>
}

export interface CoordinatorSpec {
  registry: Registry
  crs: string
  plan: SnapshotPlan
  restart?: RestartImages
  /** Periodic checkpoints (ompx run --ckpt-interval), seconds. */
  intervalSec?: number
  /** snapc_kv_max_bytes: most bytes the job's kv store may hold. */
  kvMaxBytes?: number
  /** Every node of the job's allocation (migration targets, spares included). */
  nodes?: { name: string; slots: number }[]
}

export interface RunnerPort extends JobPort {
  deliver(node: string, msg: SnapcToNode): void
  say(msg: string): void
  /** The job's session directory on the HNP (migration images wait there). */
  workDir: string
  /** Moving ranks between nodes (the job runner's side of a migration). */
  moves: MovesPort
  /** A rank's pid on its node (0 when unknown). */
  pid(rank: number): number
  /** kill_grace: how long a rank may take to end once told to. */
  killGraceMs: number
  /** A rank asked to abort the job (MPI_Abort through PMI): end it with this status. */
  abort(status: number, why: string): void
}

export class JobCoordinator {
  readonly services: AppServices
  readonly snapc: GlobalSnapc
  private periodic?: Timer
  private staged = new Set<number>()
  /** The migration round in progress, and how many there were (their seqs are negative). */
  private migration?: MigrationRound
  private migrations = 0

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
        fenceDone: (node, seq, ok, kv, text) => port.deliver(node, { t: 'hnp.fence', jobid: port.jobid, seq, ok, kv, text }),
        checkpoint: async (term) => {
          const r = await this.snapc.request({ term, stop: false, origin: 'app' })
          return `${r.seq} ${r.ref}`
        },
        checkpointRunning: () => this.snapc.inProgress,
        migrate: async (prefs, requester) => {
          const moves = resolvePreferences(this.migrationView(), prefs, requester)
          return migrationOutcomeText(await this.migrate({ moves, hold: false, keepImages: false, origin: 'app' }))
        },
      },
      spec.restart?.seq.kv,
      spec.kvMaxBytes,
    )
    this.snapc = new GlobalSnapc({ ...port, busy: () => (this.migration ? this.migrationBusy() : null) }, this.services, spec.registry, spec.plan)
  }

  private migrationBusy(): string {
    return `migration in progress for job ${this.port.jobid}; try again when it has finished`
  }

  report(msg: NodeToSnapc): void {
    switch (msg.t) {
      case 'orted.ckpt':
        return msg.seq < 0 ? this.migration?.report(msg) : this.snapc.report(msg)
      case 'orted.app':
        // A moved rank's INIT: its app ran its restore hook (onRestart) on the new node.
        if (msg.op === 'init' && this.migration) this.port.moves.ready(msg.rank)
        return this.services.request(msg)
      case 'orted.app-link':
        if (msg.up) this.migration?.appLinked(msg.rank)
        return this.services.link(msg.rank, msg.up)
      case 'orted.fence': {
        // A node's fence speaks for ranks of that node only: its first rank says which node.
        const node = this.port.procs()[msg.ranks[0] ?? -1]?.node
        if (node) this.services.fence(node, msg)
        return
      }
      case 'orted.abort':
        return this.port.abort(msg.code, msg.message)
    }
  }

  /** Where a node writes a rank's files for the checkpoint in progress (stage stores). */
  snapshotReceiver(target: { ref: string; seq: number; rank: number }): FileReceiver | null {
    if (target.seq < 0) return this.migration?.receiver(target) ?? null
    return this.snapc.receiver(target)
  }

  /** A restart's image checksums still being read, for NodeJob.launch; undefined when none are. */
  get verified(): Promise<void> | undefined {
    return this.spec.restart?.verified
  }

  /** How a rank starts: fresh, or from its image (read in place, or staged to its node first). */
  restartOf(proc: ProcInfo, node: NodeJob): { dir: string; staged: boolean } | undefined {
    const images = this.spec.restart
    if (!images) return undefined
    const direct = this.spec.registry.select('sstore', this.spec.plan.sstore).direct
    // A node served in-process shares our file system; a central store is shared by definition.
    const staged = !direct && !node.inProcess
    if (staged) this.staged.add(proc.rank)
    return { dir: staged ? '' : images.rankDir(proc.rank), staged }
  }

  /**
   * A rank's output lines cut by a checkpoint (output-tails.ts): `restart`, the partial lines
   * its snapshot holds, printed before a restarted rank's output; `term`, those a committed
   * `--term` checkpoint of this job saved, which its end does not print (the restart will).
   */
  carriedTail(rank: number, which: 'restart' | 'term'): OutputTail | undefined {
    if (which === 'term') return this.snapc.carriedTails.get(rank)
    return this.spec.restart?.seq.ranks.find((m) => m.rank === rank)?.outputTail
  }

  /** Send staged ranks' images to their nodes before they are launched. */
  async stageImages(nodes: Map<string, NodeJob>): Promise<void> {
    const images = this.spec.restart
    if (!images) return
    // Only verified images are sent (a node checks what it received against the same sums);
    // none when they failed: the job runner ends the restart.
    if (this.staged.size && images.verified && !(await images.verified.then(() => true, () => false))) return
    for (const rank of this.staged) {
      const meta = images.seq.ranks.find((m) => m.rank === rank)
      const node = nodes.get(this.port.procs()[rank]!.node)!
      await sendFiles(images.rankDir(rank), meta?.files ?? [], node.imageSink(rank))
    }
  }

  start(): void {
    const every = this.spec.intervalSec
    if (!every) return
    let warned = false
    this.periodic = setInterval(() => {
      // Not ready yet (before INIT) or busy: simply wait for the next tick.
      if (this.snapc.inProgress || this.migration || this.snapc.whyNot()) return
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
    this.migration?.rankGone(rank)
  }

  /** A node is gone with these ranks (running or not): a checkpoint still needing them fails. */
  nodeLost(node: string, ranks: number[]): void {
    this.snapc.nodeLost(node, ranks)
    this.migration?.fail(`node ${node} was lost`)
  }

  /** What `ompx migrate` and requestMigrate plan against. */
  migrationView(): MigrationView {
    return {
      crs: this.spec.crs,
      notCheckpointable: this.spec.registry.select('crs', this.spec.crs).notCheckpointable(),
      busy: this.migration ? this.migrationBusy() : this.snapc.inProgress ? `checkpoint in progress for job ${this.port.jobid}; try again when it has finished` : null,
      procs: this.port.procs().map((p) => ({ rank: p.rank, node: p.node })),
      nodes: this.spec.nodes ?? [],
    }
  }

  /** Move ranks to other nodes while the job runs (migration.ts). */
  async migrate(req: MigrationRequest, progress?: MigrationProgress): Promise<MigrationResult> {
    const view = this.migrationView()
    if (view.busy) throw new ActionableError(view.busy)
    if (view.notCheckpointable) throw new ActionableError(`job ${this.port.jobid} cannot migrate: ${view.notCheckpointable}`)
    if (this.port.ending()) throw new ActionableError(`job ${this.port.jobid} is ending; nothing was moved`)
    const crs = this.spec.registry.select('crs', this.spec.crs)
    const round = new MigrationRound(
      {
        jobid: this.port.jobid,
        ranks: this.port.procs().map((p) => p.rank),
        node: (rank) => this.port.procs()[rank]!.node,
        pid: (rank) => this.port.pid(rank),
        broadcast: (msg) => this.port.broadcast(msg),
        signal: (sig, ranks) => this.port.signal(sig, ranks),
        moves: this.port.moves,
        workDir: this.port.workDir,
        crs: crs.name,
        needsApp: crs.needsApp,
        graceMs: this.port.killGraceMs,
        timeoutMs: this.spec.plan.timeoutSec * 1000,
      },
      req,
      -++this.migrations,
      progress,
    )
    this.migration = round
    try {
      return await round.run()
    } finally {
      this.migration = undefined
    }
  }

  settled(): Promise<void> {
    return this.snapc.settled()
  }
}
