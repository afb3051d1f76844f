/**
 * One job's life in an HNP, the same for `ompx run`, `ompx restart`, recovery restarts, jobs
 * submitted to `ompx hnp` and jobs spawned by a running one (MPI_Comm_spawn, src/hnp/dpm): a
 * row in the job table and the contact file, a session directory, its coordinator registered
 * for checkpoint tools, the run, and at its end every step undone in reverse (the nodes hear
 * that the job is over from JobRunner.finish, through NodeHandle.detach), the names it published
 * included. A job and the jobs it spawned make one family: the first job's `done` waits for all.
 */
import { createJobDir, removeJobDir } from '../../runtime/session'
import { serveDpm } from '../dpm/dpm-service'
import { JobFamily } from '../dpm/family'
import type { ChildPlan, SpawnSettings } from '../dpm/spawn'
import type { Hnp } from '../hnp'
import { coordinatorSpec } from '../snapc/plan'
import { JobRunner } from './job-runner'
import type { JobSpec } from './job-spec'

/** What the caller decides about a job; the lifecycle supplies the rest of the JobSpec. */
export type JobInput = Omit<JobSpec, 'sessionDir' | 'nodes' | 'onLaunched' | 'onRankExit' | 'onMoved' | 'dpm'> & {
  /** How the job's ranks spawn children (MPI_Comm_spawn): the allocation and plugins of its run. */
  spawn: SpawnSettings
  /** A spawned job: the job that spawned it, and the family both belong to. */
  parent?: { jobid: string; family: JobFamily }
}

export interface StartedJob {
  runner: JobRunner
  /** The job and the jobs it spawned: the user's signals go to all of them. */
  family: JobFamily
  /** The job's exit status (with the jobs it spawned, theirs: family.ts), once all have ended and their traces are gone. */
  done: Promise<number>
}

export function startJob(hnp: Hnp, input: JobInput): StartedJob {
  const { jobid } = input
  const sessionDir = createJobDir(jobid)
  const family = input.parent?.family ?? new JobFamily(jobid, input.errmgrContinue, input.who)
  const runner: JobRunner = new JobRunner({
    ...input,
    sessionDir,
    nodes: hnp.nodes,
    onLaunched: (rank, pid) => hnp.jobs.launched(jobid, rank, pid),
    onRankExit: (e) => hnp.jobs.exited(jobid, e),
    onMoved: (rank, node) => {
      hnp.jobs.moved(jobid, rank, node)
      hnp.publish()
    },
    dpm: (m, answer) => {
      const { apps, procs, spawn } = input
      const start = (plan: ChildPlan) => startChild(hnp, input, family, plan)
      serveDpm({ hnp, jobid, apps, procs, spawn, family, start, say: (text) => runner.say(text) }, m, answer)
    },
  })
  hnp.jobs.add(jobid, input.apps, input.procs, input.parent?.jobid)
  hnp.coordinators.set(jobid, runner.coord)
  hnp.publish()
  const own = runner.run().finally(() => {
    hnp.names.jobEnded(jobid)
    hnp.coordinators.delete(jobid)
    hnp.jobs.remove(jobid)
    hnp.publish()
    removeJobDir(sessionDir)
  })
  family.add(jobid, runner, own, input.parent?.jobid)
  return { runner, family, done: input.parent ? own : family.done() }
}

/**
 * A spawned job: its parent's settings (output, kill grace, PMI mode, error policy), its own
 * apps and map, no stdin (as ORTE's default for children) and no --timeout of its own (the
 * parent's ends the family), the parent's preput values in its kv space.
 */
function startChild(hnp: Hnp, parent: JobInput, family: JobFamily, plan: ChildPlan): string {
  const jobid = hnp.newJobId()
  const s = parent.spawn
  const { apps, procs } = plan
  startJob(hnp, {
    ...parent,
    jobid,
    apps,
    procs,
    output: { ...parent.output, jobid },
    router: s.router?.(jobid),
    stdin: { kind: 'none' },
    timeoutSec: undefined,
    pmiPreput: plan.preput,
    cr: coordinatorSpec({ registry: s.registry, params: s.params, jobid, apps, procs, allocation: s.allocation, launcher: s.launcher.name }),
    who: `${family.who ?? 'ompx run'}: job ${jobid} (spawned by job ${parent.jobid})`,
    parent: { jobid: parent.jobid, family },
  })
  return jobid
}
