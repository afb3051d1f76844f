/**
 * The local coordinator (snapc "local" in Open MPI): one per job per node. It owns the job's
 * app-coordinator socket on this node, passes app requests (INIT/FIN, kv, request_op) up to the
 * HNP and answers back down, and runs this node's share of a checkpoint: stage 1 (PREP through
 * each rank's app coordinator), stage 2 (CRS capture into the sstore's local dir, checksums,
 * push to the global store) and stage 3 (release). The global coordinator decides; this only
 * carries out and reports, so an in-process node and an `ompx orted` behave the same.
 */
import { lstatSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { errorMessage } from '../../errors'
import type { Params } from '../../params/params'
import { callPlugin, type Registry } from '../../plugins/registry'
import type { CrsPlugin, SStorePlugin } from '../../plugins/types'
import type { OutputTail, SnapshotLocation, SnapshotSink } from '../../sstore/types'
import { FileReceiver } from '../../sstore/file-receiver'
import { checksumAlgoParam } from '../../sstore/checksum'
import { FlushAhead } from '../../sstore/flush-ahead'
import { prepareRankDir, sealRankDir } from '../../sstore/local-snapshot'
import type { SnapcToNode, MessageOf, NodeToSnapc } from '../../wire/messages'
import type { CoordinatorLink } from '../rank-env'
import { AppServer, wireRequest } from './app-server'
import { RankTokens } from './rank-tokens'

export interface LocalSnapcContext {
  jobid: string
  node: string
  /** Node-local scratch dir (stage store, restart staging). */
  nodeDir: string
  /** The job's session dir on this node: the app socket lives here. */
  sessionDir: string
  registry: Registry
  params: Params
  report(msg: NodeToSnapc): void
  /** Where a rank's captured files go when the store is not direct: the HNP's receiver for that seq. */
  snapshotSink(target: SnapshotTarget): SnapshotSink
  /** Host pid of a rank of this job on this node, while it runs. */
  pidOf(rank: number): number | undefined
  /** The rank's partial output lines once captured (stored with its snapshot, output-tails.ts). */
  outputTail(rank: number): Promise<OutputTail | undefined>
}

type Ckpt = MessageOf<'hnp.ckpt'>

/** Which local snapshot a transfer carries: rank `rank` of seq `seq` of global snapshot `ref`. */
export interface SnapshotTarget {
  ref: string
  seq: number
  rank: number
}

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
        ranks.forEach((rank, i) => void this.captureRank(msg, rank, () => ends[i]!.resolve(), allCaptured))
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

  /**
   * Stage 2 for one rank: capture (then call `captured`, whatever happened), wait for
   * `allCaptured` (the node's other ranks), seal (checksums + ompx-rank.json), push to the store.
   */
  private async captureRank(msg: Ckpt, rank: number, captured: () => void, allCaptured: Promise<unknown>): Promise<void> {
    const { jobid, node } = this.ctx
    const seq = msg.store.seq
    const crs = this.crs(msg.store.crs)
    const sstore = this.sstore(msg.store.sstore)
    const loc = this.location(msg, rank)
    const dir = this.rankDir(msg, rank)
    const fail = (op: 'captured' | 'synced', err: unknown) =>
      this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op, status: 'error', message: `rank ${rank} on ${node}: ${errorMessage(err)}` })
    let files
    let ahead: FlushAhead | undefined
    try {
      await prepareRankDir(dir)
      // Abandoned while the directory was being prepared: never start a capture for it (an app
      // told CAPTURE after its ABORT would hold itself for a release that never comes).
      if (this.abandoned.has(seq)) {
        captured()
        return rmSync(dir, { recursive: true, force: true })
      }
      const t0 = performance.now()
      const pid = this.ctx.pidOf(rank)
      if (pid === undefined) throw new Error('the rank is no longer running')
      const app = crs.needsApp && this.server ? { capture: (d: string) => this.server!.capture(rank, d) } : null
      const algo = checksumAlgoParam((k) => this.ctx.params.get(k))
      ahead = new FlushAhead(dir, algo) // seals the files the CRS is done with while it writes the rest
      const result = await callPlugin(crs, () => crs.capture({ rank, node, pid, dir, options: msg.options, app })).finally(captured)
      const captureMs = Math.round(performance.now() - t0)
      await allCaptured
      const outputTail = await this.ctx.outputTail(rank)
      const meta = await sealRankDir(dir, { rank, node, crs: crs.name, captureMs, info: result.info, outputTail }, algo, await ahead.stop())
      files = meta.files
      if (this.abandoned.has(seq)) return rmSync(dir, { recursive: true, force: true })
      this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op: 'captured', status: 'ok', snapshot: meta })
    } catch (err) {
      captured()
      await ahead?.stop() // nothing of it may touch the dir once this capture is given up
      // Abandoned meanwhile (the ABORT stopped it, most likely): nobody waits for this seq.
      if (this.abandoned.has(seq)) return rmSync(dir, { recursive: true, force: true })
      return fail('captured', err)
    }
    try {
      if (!sstore.direct) {
        const sink = this.ctx.snapshotSink({ ref: loc.ref, seq, rank })
        await callPlugin(sstore, () => sstore.push(loc, files, sink))
      }
      this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op: 'synced', status: 'ok' })
    } catch (err) {
      fail('synced', err)
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
