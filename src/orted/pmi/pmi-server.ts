/**
 * The PMI server of one job on one node (Hydra's `hydra_pmi_proxy`, Slurm's PMI plugin): what
 * lets an unmodified MPICH program find its peers. One connection per rank: in `PMI_FD` mode
 * (the default) one end of a socketpair the rank inherits as fd 3; in `PMI_PORT` mode a TCP
 * listener on the node's address, where a rank proves who it is with the `PMI_ID` it was given.
 * The commands of a session are pmi-session.ts; the kv space and fences are the job's, through
 * NodeFence (one message per node per fence). docs/pmi.md says what is served.
 */
import type { Socket, TCPSocketListener } from 'bun'
import { errorMessage } from '../../errors'
import { log } from '../../log'
import type { MessageOf, NodeToSnapc } from '../../wire/messages'
import { SocketConn, socketHandlers } from '../../wire/socket'
import { DpmClient } from './dpm-client'
import { NodeFence } from './node-fence'
import type { PmiJob } from './pmi-job'
import { PmiSession } from './pmi-session'

/** The fd a rank finds its end of the PMI socketpair on (the first after stdio). */
export const PMI_CHILD_FD = 3

export interface PmiServerContext {
  jobid: string
  node: string
  /** The address port mode listens on: this node's. */
  address: string
  report(m: NodeToSnapc): void
  /** The job's ranks on this node that take part in fences (running or being started). */
  localRanks(): number[]
}

export class PmiServer {
  private readonly fence: NodeFence
  private readonly dpm: DpmClient
  private job?: PmiJob
  private listener?: TCPSocketListener<SocketConn | undefined>
  /** Port mode: PMI_ID -> rank, until the rank's connection uses it. */
  private ids = new Map<number, number>()
  private sessions = new Set<PmiSession>()
  /** Ranks whose PMI connection closed after init without finalize (nor abort). */
  private unfinalized = new Set<number>()
  private closed = false

  constructor(private readonly ctx: PmiServerContext) {
    this.fence = new NodeFence(ctx.jobid, ctx.localRanks, ctx.report)
    this.dpm = new DpmClient(ctx.jobid, ctx.report)
  }

  /**
   * What the node learned of the job at its launch (size, universe, process mapping, apps), and
   * for a spawned job its parent's preput values, served to gets from the start.
   */
  setJob(job: Omit<PmiJob, 'kvsname' | 'fence' | 'report' | 'dpm'>, preput?: [string, string][] | null): void {
    if (this.job) return
    for (const [k, v] of preput ?? []) this.fence.cache.set(k, v)
    this.job = { ...job, kvsname: `kvs_${this.ctx.jobid}`, fence: this.fence, report: this.ctx.report, dpm: this.dpm }
  }

  /** Port mode: listen (once) on the node's address; returns `host:port` for PMI_PORT. */
  async listen(): Promise<string> {
    if (!this.listener) {
      this.listener = Bun.listen<SocketConn | undefined>({
        hostname: this.ctx.address,
        port: 0,
        data: undefined,
        socket: socketHandlers((s) => this.accept(s, null)),
      })
    }
    return `${this.ctx.address}:${this.listener.port}`
  }

  /**
   * Port mode: a PMI_ID for `rank`, random so that another local user cannot guess a live one
   * (MPICH reads it with atoi, so it is a positive 31-bit number); each is accepted once.
   */
  issueId(rank: number): number {
    for (const [id, r] of this.ids) if (r === rank) this.ids.delete(id)
    let id: number
    // Web Crypto's RNG, not node:crypto's randomInt: loading node:crypto (and the stream stack it
    // pulls in) cost every launcher and daemon ~8 ms at start (issue #16).
    do id = 1 + (crypto.getRandomValues(new Uint32Array(1))[0]! % (2 ** 31 - 2))
    while (this.ids.has(id))
    this.ids.set(id, rank)
    return id
  }

  /** FD mode: the daemon's end of a rank's socketpair. */
  async adoptFd(rank: number, fd: number): Promise<void> {
    if (this.closed) return
    await Bun.connect<SocketConn | undefined>({ fd, data: undefined, socket: socketHandlers((s) => this.accept(s, rank)) } as never)
  }

  private accept(s: Socket<SocketConn | undefined>, rank: number | null): void {
    try {
      const conn = new SocketConn(s, rank === null ? 'pmi' : `pmi rank ${rank}`)
      s.data = conn
      if (this.closed || !this.job) return conn.close()
      const session = new PmiSession(conn, this.job, rank, (id) => this.claimId(id))
      this.sessions.add(session)
      conn.onClose(() => {
        this.sessions.delete(session)
        if (session.gone()) this.unfinalized.add(session.rank!)
      })
    } catch (err) {
      log.error(`pmi: accepting a connection failed: ${errorMessage(err)}`)
      s.terminate()
    }
  }

  /** An `initack pmiid=N` in port mode: the rank it was issued to, once. */
  private claimId(id: number): number | undefined {
    const rank = this.ids.get(id)
    if (rank !== undefined) this.ids.delete(id)
    return rank
  }

  deliver(m: MessageOf<'hnp.fence'> | MessageOf<'hnp.name'> | MessageOf<'hnp.spawned'>): void {
    if (m.t === 'hnp.fence') return this.fence.done(m)
    this.dpm.answer(m)
  }

  /**
   * A local rank ended: fences stop waiting for it. One that exited 0 after PMI init without
   * finalizing leaves its peers waiting for it forever (as under mpiexec, the job ends); an exit
   * that is a failure already ends the job and says how.
   */
  rankGone(rank: number, cleanExit: boolean): void {
    if (cleanExit && this.unfinalized.delete(rank)) {
      const message = `rank ${rank} exited without calling MPI_Finalize (its PMI connection closed before finalize)`
      this.ctx.report({ t: 'orted.abort', jobid: this.ctx.jobid, rank, code: 1, message })
    }
    this.fence.rankGone()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.listener?.stop(true)
    for (const s of this.sessions) s.close()
    this.sessions.clear()
  }
}
