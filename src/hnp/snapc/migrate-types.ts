/**
 * The vocabulary of a migration (`ompx migrate`, the app's requestMigrate): what is asked, what
 * the global coordinator reports while it runs, and what it answers. Shared by the tool service,
 * the app services and the coordinator that runs the round (migration.ts), so each can be built
 * and tested on its own.
 */

/** One rank to move, and the node it goes to (resolved from --ranks/--off/--onto or the app's preferences). */
export interface MigrationMove {
  rank: number
  to: string
}

export interface MigrationRequest {
  moves: MigrationMove[]
  /** crs criu: stop the ranks that do not move (SIGSTOP) for the duration of the move. */
  hold: boolean
  /** Keep the images after a successful move (debugging); they are removed otherwise. */
  keepImages: boolean
  origin: 'tool' | 'app'
}

/** The seed's states, in order; Error ends a failed round. */
export const MIGRATION_STATES = ['Running', 'Checkpointing', 'Moving', 'Restarting', 'Finished', 'Error'] as const
export type MigrationState = (typeof MIGRATION_STATES)[number]

/** Called on each state change with the time since the request, in ms. */
export type MigrationProgress = (state: MigrationState, elapsedMs: number) => void

export interface MovedRank {
  rank: number
  from: string
  to: string
  oldPid: number
  newPid: number
  /** Bytes of the rank's image that travelled. */
  bytes: number
  /** From the request to the moved rank running again on its target. */
  downtimeMs: number
}

export interface MigrationResult {
  moves: MovedRank[]
  bytes: number
  totalMs: number
  /** Phase durations (capture, transfer, restore, ...), ms. */
  timing: Record<string, number>
}

/** What a planner needs to know about the job: where each rank is, and the allocation's nodes. */
export interface MigrationView {
  /** The job's CRS, and why it cannot checkpoint (hence not migrate) here, or null. */
  crs: string
  notCheckpointable: string | null
  /** "checkpoint in progress ..." / "migration in progress ..." when one runs now, else null. */
  busy: string | null
  procs: { rank: number; node: string }[]
  /** Every node of the job's allocation; `alive`: its daemon is up (or it can be started). */
  nodes: { name: string; slots: number }[]
}

/**
 * One entry of the app's requestMigrate(), as the seed's preference table reads it: `rank`
 * (self or a peer), and at most a target node (`onto`), a rank to move next to (`nearRank`), or
 * "off its current node" (`offNode`).
 */
export interface MigratePreference {
  rank: number
  onto?: string
  nearRank?: number
  offNode?: boolean
}
