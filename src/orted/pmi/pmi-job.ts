/**
 * What the PMI commands of both versions work on: the job as the node knows it (PmiJob, shared
 * by every session of a job on a node) and one rank's session (PmiRank). Its own file so the
 * PMI-1 session and the PMI-2 commands depend on these shapes, not on each other.
 */
import type { NodeToSnapc } from '../../wire/messages'
import type { NodeFence } from './node-fence'

export type NameOp = 'publish' | 'unpublish' | 'lookup'
export type NameAnswer = { ok: true; port?: string } | { ok: false; text: string }
/** What the `mcmd=spawn` blocks of one MPI_Comm_spawn(_multiple) ask for. */
export interface SpawnBlocks {
  apps: { np: number; argv: string[]; info: [string, string][] }[]
  preput: [string, string][]
}

export interface PmiJob {
  jobid: string
  kvsname: string
  size: number
  universeSize: number
  processMapping: string
  appOf(rank: number): number
  fence: NodeFence
  report(m: NodeToSnapc): void
  /** The HNP's name service: `answer` is called once, when the HNP replies. */
  names(rank: number, op: NameOp, service: string, port: string | undefined, answer: (a: NameAnswer) => void): void
  /** Start a child job; `answer` gets its jobid (as `port`) or why not. */
  spawn(rank: number, req: SpawnBlocks, answer: (a: NameAnswer) => void): void
}

/** One rank's session, as its commands see it. */
export interface PmiRank {
  readonly job: PmiJob
  readonly rank: number | null
  finalized: boolean
  send(cmd: string, fields?: Record<string, string | number>): void
  /** Why a put is refused, or null. */
  putError(kvsname: string | undefined, key: string | undefined, value: string | undefined): string | null
  /** Why the node refused it, or null. */
  put(key: string, value: string): string | null
  get(key: string): string | undefined
  /** Enter the job's next fence; `release` once every rank has. */
  barrier(release: () => void): void
  abort(exitcode: string | undefined): void
  /** publish / unpublish / lookup through the HNP's name service. */
  name(op: NameOp, service: string | undefined, port: string | undefined, answer: (a: NameAnswer) => void): void
}
