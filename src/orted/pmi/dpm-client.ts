/**
 * The node's side of the HNP's dpm (src/hnp/dpm): a rank's PMI command that only the HNP can
 * answer (publish, unpublish or look up a service name; spawn a child job) goes up as one
 * `orted.dpm` with a fresh id, and the `hnp.dpm` that comes back with that id is handed to the
 * session that asked. One per job on a node, shared by its sessions.
 */
import type { MessageOf, NodeToSnapc } from '../../wire/messages'

export type DpmRequest = Omit<MessageOf<'orted.dpm'>, 't' | 'jobid' | 'rank' | 'id'>
export type DpmAnswer = MessageOf<'hnp.dpm'>

export class DpmClient {
  private nextId = 1
  private pending = new Map<number, (a: DpmAnswer) => void>()

  constructor(
    private readonly jobid: string,
    private readonly report: (m: NodeToSnapc) => void,
  ) {}

  /** Ask the HNP on behalf of `rank`; `done` gets its answer (never called if the job ends first). */
  ask(rank: number, req: DpmRequest, done: (a: DpmAnswer) => void): void {
    const id = this.nextId++
    this.pending.set(id, done)
    this.report({ t: 'orted.dpm', jobid: this.jobid, rank, id, ...req })
  }

  answer(m: DpmAnswer): void {
    const done = this.pending.get(m.id)
    this.pending.delete(m.id)
    done?.(m)
  }
}
