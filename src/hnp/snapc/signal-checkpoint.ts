/**
 * A checkpoint on a signal (snapc_checkpoint_on_signal): how a batch job about to hit its time
 * limit saves its state so a new batch job can resume it, the way SCR and DMTCP users chain
 * jobs. Slurm delivers the warning (`--signal=USR1@120`, `scancel --signal=USR1`) to the job's
 * steps, that is to our node daemons, which report it to the HNP (`orted.ckpt-signal`); with
 * `B:` or `scancel --batch` it reaches the batch shell, hence `exec ompx run` in the script, and
 * `ompx run` catches it itself. Either way it ends here, once per job however many nodes saw it.
 *
 * Then (snapc_checkpoint_on_signal_then): `term`, the default, ends the job once the snapshot is
 * committed, with exit status 75 (EX_TEMPFAIL: "not done, run me again"), as `ompx checkpoint
 * --term` does with 0: the allocation is about to go, and a job killed mid-step by the time limit
 * would only leave noise. `continue` lets it run on (DMTCP's way: the limit ends it).
 */
import { errorMessage } from '../../errors'
import { checkpointSignal, type CheckpointSignal } from '../../params/core'
import type { Params } from '../../params/params'
import type { JobCoordinator } from './job-coordinator'
import type { Coordinators } from './tool-service'

/** The exit status of a job ended after its checkpoint on a signal: resume it. */
export const RESUME_STATUS = 75


export class SignalCheckpoint {
  /** Jobs whose signal checkpoint is under way or done (term): one per job, per signal burst. */
  private taken = new Set<string>()
  readonly signal: CheckpointSignal
  private term: boolean

  constructor(
    private coordinators: Coordinators,
    params: Pick<Params, 'get'>,
    private say: (msg: string) => void,
  ) {
    this.signal = checkpointSignal(params) ?? 'SIGUSR1'
    this.term = (params.get('snapc_checkpoint_on_signal_then') ?? 'term') !== 'continue'
  }

  /** `from`: who got the signal ("ompx run", "node n2"). */
  trigger(from: string): void {
    if (this.coordinators.size === 0) return this.say(`${this.signal} on ${from}: no job running to checkpoint`)
    for (const [jobid, coord] of this.coordinators) {
      if (this.taken.has(jobid)) continue
      this.taken.add(jobid)
      this.say(`${this.signal} on ${from}: checkpointing job ${jobid}${this.term ? ', then ending it' : ''} (snapc_checkpoint_on_signal)`)
      void this.take(jobid, coord)
    }
  }

  private async take(jobid: string, coord: JobCoordinator): Promise<void> {
    try {
      // A checkpoint already running (the periodic one) is waited for: it may finish before the
      // deadline, but this one is taken after it so the latest state is saved.
      await coord.snapc.settled()
      const r = await coord.snapc.request({ term: this.term, stop: false, origin: 'signal', termStatus: RESUME_STATUS })
      this.say(`job ${jobid}: checkpoint on ${this.signal} saved as ${r.ref} seq ${r.seq}` + (this.term ? `; the job ends with status ${RESUME_STATUS}, resume it with: ompx restart ${r.ref}` : ''))
      // Continue: a later signal takes another one. Term: the job is ending.
      if (!this.term) this.taken.delete(jobid)
    } catch (err) {
      // The job runs on, and a later signal tries again (older snapshots are intact); not the
      // copies of this one that the other nodes report in the same second.
      this.say(`job ${jobid}: no checkpoint on ${this.signal}: ${errorMessage(err)}`)
      setTimeout(() => this.taken.delete(jobid), 3000).unref()
    }
  }
}
