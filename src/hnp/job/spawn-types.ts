/**
 * The shapes of MPI_Comm_spawn between the job runner (which receives a rank's request and
 * waits for its children) and spawn.ts (which starts them); apart so neither imports the other.
 */
import type { AppContext } from '../../runtime/job'
import type { MessageOf } from '../../wire/messages'

/** A rank's MPI_Comm_spawn: the child job's apps and the parent's preput values. */
export type SpawnRequest = Pick<MessageOf<'orted.spawn'>, 'apps' | 'preput'>
/** A started child job: its id, and its exit status once it has ended. */
export interface SpawnedJob {
  jobid: string
  done: Promise<number>
  /** The parent is being aborted: end the child too. */
  stop(): void
}
/** Starts child jobs (spawn.ts). */
export type Spawner = (parent: { jobid: string; apps: AppContext[] }, req: SpawnRequest) => Promise<SpawnedJob>
