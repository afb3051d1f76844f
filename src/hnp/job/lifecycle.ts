/**
 * One job's life in an HNP, the same for `ompx run`, `ompx restart`, recovery restarts and jobs
 * submitted to `ompx hnp`: a row in the job table and the contact file, a session directory, its
 * coordinator registered for checkpoint tools, the run, and at its end every step undone in
 * reverse (the nodes hear that the job is over from JobRunner.finish, through NodeHandle.detach).
 */
import { createJobDir, removeJobDir } from '../../runtime/session'
import type { Hnp } from '../hnp'
import { JobRunner, type JobSpec } from './job-runner'

/** What the caller decides about a job; the lifecycle supplies the rest of the JobSpec. */
export type JobInput = Omit<JobSpec, 'sessionDir' | 'nodes' | 'names' | 'onLaunched' | 'onRankExit' | 'onMoved'>

export interface StartedJob {
  runner: JobRunner
  /** The job's exit status, once it has ended and its traces are gone. */
  done: Promise<number>
}

export function startJob(hnp: Hnp, input: JobInput): StartedJob {
  const { jobid } = input
  const sessionDir = createJobDir(jobid)
  const runner = new JobRunner({
    ...input,
    sessionDir,
    nodes: hnp.nodes,
    names: hnp.names,
    onLaunched: (rank, pid) => hnp.jobs.launched(jobid, rank, pid),
    onRankExit: (e) => hnp.jobs.exited(jobid, e),
    onMoved: (rank, node) => {
      hnp.jobs.moved(jobid, rank, node)
      hnp.publish()
    },
  })
  hnp.jobs.add(jobid, input.apps, input.procs)
  hnp.coordinators.set(jobid, runner.coord)
  hnp.publish()
  const done = runner.run().finally(() => {
    hnp.coordinators.delete(jobid)
    hnp.names.jobEnded(jobid)
    hnp.jobs.remove(jobid)
    hnp.publish()
    removeJobDir(sessionDir)
  })
  return { runner, done }
}
