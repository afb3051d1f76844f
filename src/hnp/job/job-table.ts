/**
 * What the HNP knows about its jobs for tools (`ompx ps`): per rank its node, pid, state and
 * start time, updated as daemons report launches and exits.
 */
import type { RankExit } from '../../node/contract'
import type { AppContext, ProcInfo } from '../../runtime/job'

export interface ProcRow {
  rank: number
  node: string
  pid: number | null
  state: 'launching' | 'running' | 'exited' | 'failed' | 'killed'
  startedAt: number | null
  exit?: string
}

export interface JobRow {
  jobid: string
  app: string
  state: 'running' | 'aborting' | 'finished'
  started: number
  procs: ProcRow[]
  status?: number
  /** A job spawned by another (MPI_Comm_spawn): the spawning job. */
  parent?: string
}

export class JobTable {
  private jobs = new Map<string, JobRow>()

  add(jobid: string, apps: AppContext[], procs: ProcInfo[], parent?: string): JobRow {
    const row: JobRow = {
      ...(parent === undefined ? {} : { parent }),
      jobid,
      app: apps.map((a) => a.argv.join(' ')).join(' : '),
      state: 'running',
      started: Date.now(),
      procs: procs.map((p) => ({ rank: p.rank, node: p.node, pid: null, state: 'launching', startedAt: null })),
    }
    this.jobs.set(jobid, row)
    return row
  }

  launched(jobid: string, rank: number, pid: number): void {
    const p = this.jobs.get(jobid)?.procs[rank]
    if (p) Object.assign(p, { pid, state: 'running', startedAt: Date.now() })
  }

  /** A migrated rank: on its new node, starting (its new pid comes with launched()). */
  moved(jobid: string, rank: number, node: string): void {
    const p = this.jobs.get(jobid)?.procs[rank]
    if (p) Object.assign(p, { node, pid: null, state: 'launching', startedAt: null })
  }

  exited(jobid: string, e: RankExit): void {
    const p = this.jobs.get(jobid)?.procs[e.rank]
    if (!p) return
    p.state = e.signal ? 'killed' : e.code === 0 ? 'exited' : 'failed'
    p.exit = e.signal ?? String(e.code)
  }

  finished(jobid: string, status: number): void {
    const row = this.jobs.get(jobid)
    if (row) Object.assign(row, { state: 'finished', status })
  }

  remove(jobid: string): void {
    this.jobs.delete(jobid)
  }

  ids(): string[] {
    return [...this.jobs.keys()]
  }

  list(): JobRow[] {
    return [...this.jobs.values()]
  }
}
