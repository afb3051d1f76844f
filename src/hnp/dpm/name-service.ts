/**
 * The HNP's name service (MPI_Publish_name / MPI_Lookup_name / MPI_Unpublish_name; ORTE's
 * pubsub "server", Hydra's publish list): service name -> port name, shared by every job of one
 * HNP, so a job started by one `ompx run` (parent and spawned children) or any job submitted to
 * one `ompx hnp` finds what another published. A name belongs to the job that published it: only
 * that job unpublishes it, and it goes when that job ends. Publishing a name that is taken fails
 * (as Hydra's `key_already_present`, ORTE's duplicate), and so does looking up a missing one:
 * at once, without waiting for a publisher (MPICH asks once and returns MPI_ERR_NAME).
 */

/** Most names one HNP holds: a bound on what jobs can make it keep. */
const MAX_NAMES = 4096
/** Longest service name or port: PMI's vallen_max, the most a client can read back. */
const MAX_LENGTH = 1024

export type NameResult = { ok: true; port?: string } | { ok: false; why: string }

export class NameService {
  private names = new Map<string, { port: string; jobid: string }>()

  publish(jobid: string, service: string, port: string): NameResult {
    if (!service || service.length > MAX_LENGTH) return { ok: false, why: `a service name must be 1 to ${MAX_LENGTH} characters` }
    if (!port || port.length > MAX_LENGTH) return { ok: false, why: `a port must be 1 to ${MAX_LENGTH} characters` }
    const held = this.names.get(service)
    if (held) return { ok: false, why: held.jobid === jobid ? 'key_already_present' : `key_already_present (published by job ${held.jobid})` }
    if (this.names.size >= MAX_NAMES) return { ok: false, why: `the HNP holds ${MAX_NAMES} names already` }
    this.names.set(service, { port, jobid })
    return { ok: true }
  }

  unpublish(jobid: string, service: string): NameResult {
    const held = this.names.get(service)
    if (!held) return { ok: false, why: 'service_not_found' }
    if (held.jobid !== jobid) return { ok: false, why: `service_published_by_job_${held.jobid}` }
    this.names.delete(service)
    return { ok: true }
  }

  lookup(service: string): NameResult {
    const held = this.names.get(service)
    return held ? { ok: true, port: held.port } : { ok: false, why: 'service_not_found' }
  }

  /** A job ended: the names it published go with it. */
  jobEnded(jobid: string): void {
    for (const [service, held] of this.names) if (held.jobid === jobid) this.names.delete(service)
  }
}
