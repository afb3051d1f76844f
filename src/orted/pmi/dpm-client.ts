/**
 * The node's side of the HNP's dpm (src/hnp/dpm): a rank's PMI command that only the HNP can
 * answer (publish, unpublish or look up a service name; spawn a child job) goes up as one
 * `orted.name` or `orted.spawn` with a fresh id, and the `hnp.name` / `hnp.spawned` that comes
 * back with that id is handed to the session that asked. One per job on a node, shared by its
 * sessions; a session that has ended drops its answer (PmiSession.send).
 */
import type { MessageOf, NodeToSnapc, SpawnAppWire } from '../../wire/messages'

export type NameOp = MessageOf<'orted.name'>['op']
/** The HNP's answer: the port looked up or the child's jobid (`value`), or why not (`text`). */
export interface DpmAnswer {
  ok: boolean
  value?: string
  text?: string
}

export class DpmClient {
  private nextId = 1
  private pending = new Map<number, (a: DpmAnswer) => void>()

  constructor(
    private readonly jobid: string,
    private readonly report: (m: NodeToSnapc) => void,
  ) {}

  /** publish / unpublish / lookup `service` for `rank`; `done` gets the HNP's answer. */
  name(rank: number, op: NameOp, service: string, port: string | undefined, done: (a: DpmAnswer) => void): void {
    this.report({ t: 'orted.name', jobid: this.jobid, rank, id: this.expect(done), op, service, ...(port === undefined ? {} : { port }) })
  }

  /** Start a child job for `rank` (MPI_Comm_spawn); `done` gets its jobid once it has started. */
  spawn(rank: number, apps: SpawnAppWire[], preput: [string, string][], done: (a: DpmAnswer) => void): void {
    this.report({ t: 'orted.spawn', jobid: this.jobid, rank, id: this.expect(done), apps, preput })
  }

  answer(m: MessageOf<'hnp.name'> | MessageOf<'hnp.spawned'>): void {
    const done = this.pending.get(m.id)
    this.pending.delete(m.id)
    done?.({ ok: m.ok, value: m.t === 'hnp.name' ? m.port : m.child, text: m.text })
  }

  private expect(done: (a: DpmAnswer) => void): number {
    const id = this.nextId++
    this.pending.set(id, done)
    return id
  }
}
