/**
 * The local coordinator (snapc "local" in Open MPI): one per job per node. It owns the job's
 * app-coordinator socket on this node, passes app requests (INIT/FIN, kv, request_op) up to the
 * HNP and answers back down, and runs this node's share of a checkpoint: stage 1 (PREP through
 * each rank's app coordinator), stage 2 (CRS capture into the sstore's local dir, checksums,
 * push to the global store: rank-capture.ts) and stage 3 (release). The global coordinator
 * decides; this only carries out and reports, so an in-process node and an `ompx orted` behave
 * the same.
 */
import { lstatSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { callPlugin, type Registry } from '../../plugins/registry'
import type { CrsPlugin, SStorePlugin } from '../../plugins/types'
import type { SnapshotLocation } from '../../sstore/types'
import { FileReceiver } from '../../sstore/file-receiver'
import type { SnapcToNode, MessageOf } from '../../wire/messages'
import type { CoordinatorLink } from '../rank-env'
import { AppServer, wireRequest } from './app-server'
import { RankTokens } from './rank-tokens'
import { captureRank, type CaptureContext } from './rank-capture'

export interface LocalSnapcContext extends CaptureContext {
  /** Node-local scratch dir (stage store, restart staging). */
  nodeDir: string
  /** The job's session dir on this node: the app socket lives here. */
  sessionDir: string
  registry: Registry
}

type Ckpt = MessageOf<'hnp.ckpt'>

export class LocalSnapc {
  private server?: AppServer
  private readonly tokens = new RankTokens()
  private readonly restartDirs = new Map<number, string>()
  private readonly staging = new Map<number, FileReceiver>()
  /** Ranks of this node taking part in the checkpoint in progress. */
  private inCkpt = new Set<number>()
  private ckptSeq = -1
  /** Seqs the HNP abandoned while this node was still capturing. */
  private abandoned = new Set<number>()

  constructor(private ctx: LocalSnapcContext) {}

  get socketPath(): string {
    return join(this.ctx.sessionDir, 'coord.sock')
  }

  /** Listen before any rank starts, so a fast rank never finds the socket missing. */
  async start(): Promise<void> {
    if (this.server) return
    mkdirSync(this.ctx.sessionDir, { recursive: true, mode: 0o700 })
    const { jobid, report } = this.ctx
    this.server = await AppServer.listen({
      path: this.socketPath,
      token: (rank) => this.tokens.get(rank),
      restartDir: (rank) => this.restartDirs.get(rank) ?? null,
      events: {
        linked: (rank) => report({ t: 'orted.app-link', jobid, rank, up: true }),
        unlinked: (rank) => report({ t: 'orted.app-link', jobid, rank, up: false }),
        request: (rank, r) => report({ t: 'orted.app', jobid, rank, id: r.id, ...wireRequest(r) }),
        prep: (rank, status, message) => {
          if (this.inCkpt.has(rank)) report({ t: 'orted.ckpt', jobid, rank, seq: this.ckptSeq, op: 'prep', status, message })
        },
      },
    })
  }

  /**
   * What a rank needs to reach us (and to know it was restarted). A staged image must be
   * complete and on disk before its rank starts; an image read in place must still be a real
   * directory (verified by the HNP, never followed through a symlink put there since).
   */
  async rankLink(rank: number, restart?: { dir: string; staged: boolean; migrated?: boolean }): Promise<CoordinatorLink> {
    if (restart && !restart.staged && !lstatSync(restart.dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`restart image ${restart.dir} of rank ${rank} is not a directory (a symlink is never followed)`)
    }
    const link: CoordinatorLink = { socket: this.socketPath, token: this.tokens.issue(rank) }
    if (restart) {
      const dir = restart.staged ? this.localRestartDir(rank) : restart.dir
      const rx = this.staging.get(rank)
      this.staging.delete(rank)
      if (rx) await rx.finish()
      this.restartDirs.set(rank, dir)
      link.restartDir = dir
      link.migrated = restart.migrated
    }
    return link
  }

  /**
   * Restart staging: where a rank's image lands on this node, before its launch. The dir starts
   * empty, so the rank finds only the files the HNP sent (none left from an earlier attempt).
   */
  stagingReceiver(rank: number): FileReceiver {
    let rx = this.staging.get(rank)
    if (!rx) {
      rmSync(this.localRestartDir(rank), { recursive: true, force: true })
      this.staging.set(rank, (rx = new FileReceiver(this.localRestartDir(rank))))
    }
    return rx
  }

  handle(msg: SnapcToNode): void {
    if (msg.t === 'hnp.fence' || msg.t === 'hnp.name' || msg.t === 'hnp.spawned') return // the PMI server's (src/orted/pmi)
    if (msg.t === 'hnp.app') this.server?.reply(msg.rank, msg.id, msg.ok, msg.value, msg.text)
    else this.checkpoint(msg)
  }

  /** Ranks of this job on this node, in checkpoint order. */
  private localRanks(msg: Ckpt): number[] {
    return msg.ranks.filter((r) => this.ctx.pidOf(r) !== undefined)
  }

  private checkpoint(msg: Ckpt): void {
    const { jobid } = this.ctx
    const ranks = this.localRanks(msg)
    switch (msg.op) {
      case 'prep': {
        this.inCkpt = new Set(ranks)
        this.ckptSeq = msg.store.seq
        const crs = this.crs(msg.store.crs)
        for (const rank of ranks) {
          if (!crs.needsApp) {
            this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq: msg.store.seq, op: 'prep', status: 'ok' })
          } else if (!this.server?.linked(rank)) {
            const message = `rank ${rank} has no app coordinator (it did not call init() of the ompx SDK and does not run under ompx shim)`
            this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq: msg.store.seq, op: 'prep', status: 'null', message })
          } else this.server.ckpt(rank, msg.store.seq, msg.movers?.includes(rank) ? [...msg.options, 'migrating', 'term'] : msg.options, msg.store.ref)
        }
        return
      }
      case 'capture': {
        // Every rank of this node is captured before any seal starts: a whole seal beside the
        // other ranks' captures slowed them more than it won (4 criu dumps of 256 MiB: 387 ms
        // instead of 280 ms). What overlaps is FlushAhead: each finished file, as it comes.
        const ends = ranks.map(() => Promise.withResolvers<void>())
        const allCaptured = Promise.all(ends.map((e) => e.promise))
        ranks.forEach((rank, i) =>
          void captureRank(this.ctx, {
            msg,
            rank,
            where: () => ({ crs: this.crs(msg.store.crs), sstore: this.sstore(msg.store.sstore), loc: this.location(msg, rank), dir: this.rankDir(msg, rank) }),
            app: () => (this.server ? { capture: (d: string) => this.server!.capture(rank, d) } : null),
            abandoned: () => this.abandoned.has(msg.store.seq),
            captured: () => ends[i]!.resolve(),
            allCaptured,
          }),
        )
        return
      }
      case 'release': {
        const state = msg.text === 'term' ? 'TERM' : 'CONTINUE'
        // After a migration round the ranks that stayed learn which ranks moved.
        const moved = msg.options.includes('migrated') ? (msg.movers ?? []) : []
        if (this.crs(msg.store.crs).needsApp) for (const rank of ranks) this.server?.release(rank, state, moved)
        this.inCkpt.clear()
        return
      }
      case 'abort':
        for (const rank of this.inCkpt) this.server?.abort(rank, msg.text ?? 'checkpoint abandoned')
        this.inCkpt.clear()
        // Half-written images of an abandoned seq are worthless (it is never listed); a capture
        // still running removes its own when it ends.
        this.abandoned.add(msg.store.seq)
        for (const rank of ranks) rmSync(this.rankDir(msg, rank), { recursive: true, force: true })
    }
  }

  private location(msg: Ckpt, rank: number): SnapshotLocation {
    const { globalDir, ref, seq } = msg.store
    return { globalDir, ref, seq, rank, nodeDir: this.ctx.nodeDir }
  }

  private rankDir(msg: Ckpt, rank: number): string {
    const sstore = this.sstore(msg.store.sstore)
    return callPlugin(sstore, () => sstore.rankDir(this.location(msg, rank)))
  }

  /**
   * A restarting rank's node-local directory for this job: its staged images land here, and so
   * does what restoring it writes (criu's restore.log), never the snapshot. Removed by close().
   */
  localRestartDir(rank: number): string {
    return join(this.ctx.nodeDir, 'restart', `job-${this.ctx.jobid}`, `rank_${rank}`)
  }

  private crs(name: string): CrsPlugin {
    return this.ctx.registry.select('crs', name)
  }

  private sstore(name: string): SStorePlugin {
    return this.ctx.registry.select('sstore', name)
  }

  /** The job is over on this node: stop listening, drop tokens, staged images and restore logs. */
  close(): void {
    this.server?.close()
    this.server = undefined
    for (const rx of this.staging.values()) void rx.abort()
    rmSync(join(this.ctx.nodeDir, 'restart', `job-${this.ctx.jobid}`), { recursive: true, force: true })
  }
}
