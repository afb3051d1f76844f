/**
 * The HNP's answers to checkpoint tools: `ompx checkpoint` (take one, stream its progress) and
 * `ompx checkpoint -l` (where the job's snapshots are). A tool names a job by id, or by nothing
 * when the HNP runs exactly one.
 */
import { ActionableError, errorMessage } from '../../errors'
import type { Channel } from '../../wire/channel'
import type { JobCoordinator } from './job-coordinator'

export type Coordinators = Map<string, JobCoordinator>

/** The job a tool names (--jobid), or the only one running. */
export function pick(jobs: Coordinators, jobid: string | undefined): [string, JobCoordinator] {
  if (jobid) {
    const c = jobs.get(jobid)
    if (!c) throw new ActionableError(`no job ${jobid} here (running: ${[...jobs.keys()].join(', ') || 'none'})`)
    return [jobid, c]
  }
  if (jobs.size === 1) return [...jobs][0]!
  if (jobs.size === 0) throw new ActionableError('no job is running on this HNP')
  throw new ActionableError(`this HNP runs ${jobs.size} jobs (${[...jobs.keys()].join(', ')}); name one with --jobid`)
}

export function serveCheckpointTools(jobs: Coordinators): (ch: Channel) => void {
  return (ch) => {
    ch.on('tool.checkpoint', (m) => {
      try {
        const [jobid, coord] = pick(jobs, m.jobid)
        const ref = coord.snapc.plan.ref
        const progress = m.status
          ? (state: string, elapsed: number) => ch.send({ t: 'hnp.ckpt-status', jobid, state, ref, seq: -1, elapsed })
          : undefined
        coord.snapc.request({ term: m.term, stop: m.stop, origin: 'tool' }, progress).then(
          (r) => ch.send({ t: 'hnp.ckpt-done', jobid, ref: r.ref, seq: r.seq, dir: r.dir, bytes: r.bytes, timing: r.timing }),
          (err) => ch.send({ t: 'error', message: errorMessage(err) }),
        )
      } catch (err) {
        ch.send({ t: 'error', message: errorMessage(err) })
      }
    })
    ch.on('tool.snapshots', (m) => {
      try {
        const [jobid, coord] = pick(jobs, m.jobid)
        const { ref, globalDir, crs } = coord.snapc.plan
        ch.send({ t: 'hnp.snapshots', jobid, ref, dir: globalDir, crs })
      } catch (err) {
        ch.send({ t: 'error', message: errorMessage(err) })
      }
    })
  }
}
