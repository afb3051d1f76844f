/**
 * The name service of one HNP (MPI_Publish_name / MPI_Lookup_name / MPI_Unpublish_name, reached
 * through the nodes' PMI servers as `orted.name`): service names and the port strings published
 * under them, shared by every job of the HNP (an `ompx run`, or every submission to one `ompx
 * hnp`), so a server job and a client job can meet. A job's names go when the job ends.
 */

export type NameAnswer = { ok: true; port?: string } | { ok: false; text: string }

/** A service name or port as a PMI value can carry it. */
const MAX_NAME = 1024

export class NameService {
  private names = new Map<string, { port: string; jobid: string }>()

  request(jobid: string, op: 'publish' | 'unpublish' | 'lookup', service: string, port?: string): NameAnswer {
    if (!service || service.length > MAX_NAME) return { ok: false, text: `a service name must be 1 to ${MAX_NAME} characters` }
    const known = this.names.get(service)
    switch (op) {
      case 'publish':
        if (!port || port.length > MAX_NAME) return { ok: false, text: `a port must be 1 to ${MAX_NAME} characters` }
        if (known) return { ok: false, text: `service ${service} is already published by job ${known.jobid}` }
        this.names.set(service, { port, jobid })
        return { ok: true }
      case 'unpublish':
        if (!known) return { ok: false, text: `service ${service} is not published` }
        if (known.jobid !== jobid) return { ok: false, text: `service ${service} was published by job ${known.jobid}, not this one` }
        this.names.delete(service)
        return { ok: true }
      case 'lookup':
        return known ? { ok: true, port: known.port } : { ok: false, text: `service ${service} is not published` }
    }
  }

  /** The job ended: what it published is gone with it. */
  jobEnded(jobid: string): void {
    for (const [name, v] of this.names) if (v.jobid === jobid) this.names.delete(name)
  }
}
