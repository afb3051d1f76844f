/**
 * The local coordinator (snapc "local" in Open MPI): one per job per node. It owns the job's
 * app-coordinator socket on this node, passes app requests (INIT/FIN, kv, request_op) up to the
 * HNP and answers back down, and runs this node's share of a checkpoint: stage 1 (PREP through
 * each rank's app coordinator), stage 2 (CRS capture into the sstore's local dir, checksums,
 * push to the global store) and stage 3 (release). The global coordinator decides; this only
 * carries out and reports, so an in-process node and an `ompx orted` behave the same.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { errorMessage } from '../../errors'
import type { Params } from '../../params/params'
import { callPlugin, type Registry } from '../../plugins/registry'
import type { CrsPlugin, SnapshotLocation, SnapshotSink, SStorePlugin } from '../../plugins/types'
import { FileReceiver } from '../../sstore/file-receiver'
import { sealRankDir } from '../../sstore/local-snapshot'
import type { HnpToNode, MessageOf, NodeToHnp } from '../../wire/messages'
import { AppServer } from './app-server'
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
  report(msg: NodeToHnp): void
  /** Send one file chunk to the HNP; resolves when more may be sent (flow control). */
  sendFile(msg: MessageOf<'orted.file'>): Promise<void>
  /** True when sendFile is done with the chunk's data once it resolves (it encoded it into a frame). */
  sendFileReleasesData?: boolean
  /** Host pid of a rank of this job on this node, while it runs. */
  pidOf(rank: number): number | undefined
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
        request: (rank, r) => report({ t: 'orted.app', jobid, rank, id: r.id, op: r.op, key: r.key, value: r.value, term: r.term }),
        prep: (rank, status, message) => {
          if (this.inCkpt.has(rank)) report({ t: 'orted.ckpt', jobid, rank, seq: this.ckptSeq, op: 'prep', status, message })
        },
      },
    })
  }

  /**
   * Variables a rank needs to reach us (and to know it was restarted). A staged image must be
   * complete and on disk before its rank starts.
   */
  async rankEnv(rank: number, restart?: { dir: string; staged: boolean }): Promise<Record<string, string>> {
    const env: Record<string, string> = { OMPX_COORD_SOCK: this.socketPath, OMPX_COORD_TOKEN: this.tokens.issue(rank) }
    if (restart) {
      const dir = restart.staged ? this.localRestartDir(rank) : restart.dir
      const rx = this.staging.get(rank)
      this.staging.delete(rank)
      if (rx) await rx.finish()
      this.restartDirs.set(rank, dir)
      Object.assign(env, { OMPX_RESTART: '1', OMPX_RESTART_DIR: dir })
    }
    return env
  }

  handle(msg: HnpToNode): void {
    if (msg.t === 'hnp.app') {
      this.server?.reply(msg.rank, msg.id, msg.ok, msg.value, msg.text)
    } else if (msg.t === 'hnp.file') {
      // Restart staging: the rank's image arrives before its launch.
      let rx = this.staging.get(msg.rank)
      if (!rx) this.staging.set(msg.rank, (rx = new FileReceiver(this.localRestartDir(msg.rank))))
      void rx.write(msg)
    } else this.checkpoint(msg)
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
          } else this.server.ckpt(rank, msg.store.seq, msg.options, msg.store.ref)
        }
        return
      }
      case 'capture': {
        // Every rank of this node is captured before any is sealed: a seal (reading the images
        // back, fsync) running beside the other ranks' captures slowed them down more than the
        // overlap won (4 criu dumps of 256 MiB: 387 ms instead of 280 ms for the slowest).
        const ends = ranks.map(() => Promise.withResolvers<void>())
        const allCaptured = Promise.all(ends.map((e) => e.promise))
        ranks.forEach((rank, i) => void this.captureRank(msg, rank, () => ends[i]!.resolve(), allCaptured))
        return
      }
      case 'release': {
        const state = msg.text === 'term' ? 'TERM' : 'CONTINUE'
        if (this.crs(msg.store.crs).needsApp) for (const rank of ranks) this.server?.release(rank, state)
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
    try {
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      const t0 = performance.now()
      const pid = this.ctx.pidOf(rank)
      if (pid === undefined) throw new Error('the rank is no longer running')
      const app = crs.needsApp && this.server ? { capture: (d: string) => this.server!.capture(rank, d) } : null
      const result = await callPlugin(crs, () => crs.capture({ rank, node, pid, dir, options: msg.options, app })).finally(captured)
      const captureMs = Math.round(performance.now() - t0)
      await allCaptured
      const algo = (this.ctx.params.get('sstore_base_checksum') || 'crc32') as 'crc32' | 'sha256'
      const meta = await sealRankDir(dir, { rank, node, crs: crs.name, captureMs, info: result.info }, algo)
      files = meta.files
      if (this.abandoned.has(seq)) return rmSync(dir, { recursive: true, force: true })
      this.ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op: 'captured', status: 'ok', snapshot: meta })
    } catch (err) {
      captured()
      return fail('captured', err)
    }
    try {
      if (!sstore.direct) {
        const sink: SnapshotSink = {
          releasesData: this.ctx.sendFileReleasesData === true,
          write: (path, offset, data, codec, last) => this.ctx.sendFile({ t: 'orted.file', jobid, ref: loc.ref, seq, rank, path, offset, data, codec, last }),
        }
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
