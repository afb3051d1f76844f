/**
 * The job runner's side of a migration: a moving rank ends on its source node and starts again
 * on its target, and neither is the rank's exit or a new rank. While a rank moves, its exit on
 * the source is the end of its old self (swallowed, handed to the migration), and an exit on the
 * target before it runs is a failed restore (handed over too, for the rollback). The rank keeps
 * its number, app, output stream and stdin routing; only its node and pid change.
 */
import type { RunRequest } from '../../args/mpirun'
import type { NodeJob, RankExit } from '../../node/contract'
import type { AppContext, ProcInfo } from '../../runtime/job'
import { sendFiles } from '../../sstore/file-sender'
import type { SnapshotFileInfo } from '../../sstore/types'
import { readsStdin } from './stdin'

/** What the migration coordinator asks of the job runner (JobCoordinator's RunnerPort.moves). */
export interface MovesPort {
  /** Daemons on these nodes (spares have none until a rank moves there). */
  ensureNodes(names: string[]): Promise<void>
  /** From now on an exit of `rank` on `from` is its old self ending: resolves with that exit. */
  leaving(rank: number, from: string): Promise<RankExit>
  /** Kill what is left of `rank` on `node` (a source that did not end in time). */
  kill(rank: number, node: string): void
  /**
   * Start `rank` on `to` from its image (staged to that node first unless it is in-process);
   * resolves with the new pid. With `appWithinMs` (an app-level CRS, whose restore hook is the
   * app's own onRestart) only once the restored app said INIT (`ready`), or that long after its
   * start: an exit before that is a failed restore (rolled back), not the rank's failure.
   */
  arrive(rank: number, to: string, image: { dir: string; files: SnapshotFileInfo[] }, appWithinMs?: number): Promise<number>
  /** The restored app of `rank` ran its restore hook and said INIT. */
  ready(rank: number): void
  /** The move is over, done or given up: the rank's exits count again. */
  settle(rank: number): void
}

/** What RankMoves needs of the job (a JobSpec is one). */
export interface MoverJob {
  jobid: string
  apps: AppContext[]
  procs: ProcInfo[]
  stdin: RunRequest['stdin']
  cr: { crs: string }
  nodes: ReadonlyMap<string, unknown>
  /** Start daemons on nodes that have none yet. */
  addNodes?(names: string[]): Promise<void>
  onMoved?(rank: number, node: string): void
}

interface Move {
  from: string
  to?: string
  left?: PromiseWithResolvers<RankExit>
  started?: PromiseWithResolvers<number>
  /** The restored rank reported its pid (and, when awaited, its app INIT): from now on its exits are the rank's own. */
  running?: boolean
  /** Wait for the app's INIT after the pid (bounded by this many ms), and what was seen so far. */
  appWithinMs?: number
  pid?: number
  inited?: boolean
  patience?: Timer
}

export class RankMoves implements MovesPort {
  private moves = new Map<number, Move>()

  constructor(
    private job: MoverJob,
    /** The job's handle on a node, attached on first use. */
    private node: (name: string) => NodeJob,
  ) {}

  async ensureNodes(names: string[]): Promise<void> {
    const missing = names.filter((n) => !this.job.nodes.has(n))
    if (missing.length === 0) return
    if (!this.job.addNodes) throw new Error(`no daemon on ${missing.join(', ')}`)
    await this.job.addNodes(missing)
  }

  leaving(rank: number, from: string): Promise<RankExit> {
    const move: Move = { from, left: Promise.withResolvers<RankExit>() }
    this.moves.set(rank, move)
    return move.left!.promise
  }

  kill(rank: number, node: string): void {
    this.node(node).signal('SIGKILL', [rank])
  }

  async arrive(rank: number, to: string, image: { dir: string; files: SnapshotFileInfo[] }, appWithinMs?: number): Promise<number> {
    const move = this.moves.get(rank) ?? { from: to }
    this.moves.set(rank, move)
    const proc = this.job.procs[rank]!
    const target = this.node(to)
    const staged = !target.inProcess
    if (staged) await sendFiles(image.dir, image.files, target.imageSink(rank))
    clearTimeout(move.patience)
    Object.assign(move, { to, started: Promise.withResolvers<number>(), running: false, appWithinMs, pid: undefined, inited: false, patience: undefined })
    proc.node = to
    this.job.onMoved?.(rank, to)
    const app = this.job.apps[proc.app]!
    const restart = { dir: staged ? '' : image.dir, staged, migrated: true }
    const spec = { proc, argv: app.argv, cwd: app.cwd, appEnv: app.env, stdin: readsStdin(this.job.stdin, rank), crs: this.job.cr.crs, restart }
    const size = this.job.procs.length
    target.launch({ jobid: this.job.jobid, size, universeSize: size }, [spec]).catch((err) => move.started?.reject(err))
    return move.started!.promise
  }

  settle(rank: number): void {
    clearTimeout(this.moves.get(rank)?.patience)
    this.moves.delete(rank)
  }

  /** The runner saw `rank` start with `pid` on `node`: the end of a move's restore (or of its launch, see arrive). */
  launched(rank: number, node: string, pid: number): void {
    const move = this.moves.get(rank)
    if (move?.to !== node || !move.started) return
    move.pid = pid
    if (move.appWithinMs === undefined || move.inited) return this.up(move)
    // An app that hangs in its restore is let be after that long, as a running rank.
    move.patience = setTimeout(() => this.up(move), move.appWithinMs)
  }

  ready(rank: number): void {
    const move = this.moves.get(rank)
    if (!move?.started || move.running) return
    move.inited = true
    if (move.pid !== undefined) this.up(move)
  }

  private up(move: Move): void {
    clearTimeout(move.patience)
    move.running = true
    move.started!.resolve(move.pid!)
  }

  /** An exit the runner must not count (see the header), or false. */
  swallow(e: RankExit): boolean {
    const move = this.moves.get(e.rank)
    if (!move) return false
    if (move.left && e.node === move.from && move.to === undefined) {
      move.left.resolve(e)
      return true
    }
    if (move.to === e.node && move.started && !move.running) {
      move.started.reject(new Error(`the restored rank ${e.rank} ended at once on ${e.node} (${e.signal ?? `exit ${e.code}`})`))
      return true
    }
    return false
  }
}
