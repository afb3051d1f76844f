/**
 * What the PMI commands of both versions work on: the job as the node knows it (PmiJob, shared
 * by every session of a job on a node) and one rank's session (PmiRank). Its own file so the
 * PMI-1 session and the PMI-2 commands depend on these shapes, not on each other.
 */
import type { NodeToSnapc } from '../../wire/messages'
import type { DpmClient } from './dpm-client'
import type { NodeFence } from './node-fence'

export interface PmiJob {
  jobid: string
  kvsname: string
  size: number
  universeSize: number
  processMapping: string
  appOf(rank: number): number
  fence: NodeFence
  report(m: NodeToSnapc): void
  /** Requests only the HNP answers: the name service and spawn (dpm-client.ts). */
  dpm: DpmClient
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
}
