/**
 * `ompx/app`: take part in ompx's coordinated checkpoints, learn about restarts, and exchange
 * small values with the other ranks. See docs/app-sdk.md.
 *
 *   import * as app from 'ompx/app'
 *   app.onCheckpoint(async (dir) => { await Bun.write(`${dir}/state.bin`, state) })
 *   app.onRestart(async (dir) => { state.set(new Uint32Array(await Bun.file(`${dir}/state.bin`).arrayBuffer())) })
 *   await app.init()
 *   for (...) { work(); await app.yieldToRuntime() }
 *   await app.finalize()
 *
 * Without ompx (no OMPX_COORD_SOCK) everything works standalone: rank 0 of 1, no checkpoints.
 */
import { AppClient, type CheckpointTicket, type RestartInfo } from './client'
import type { CheckpointInfo, ContinueInfo, TerminateInfo } from './checkpoint'
import type { MigrateOutcome, MigratePreference } from './migrate'

export { AppClient, type AppClientOptions, type CheckpointTicket, type RestartInfo } from './client'
export type { CheckpointInfo, ContinueInfo, TerminateInfo } from './checkpoint'
export type { MigrateOutcome, MigratePreference, MigratedRank } from './migrate'

const client = new AppClient()

/** This rank and the job's size (live bindings: set from the environment, final after init()). */
export let rank = client.rank
export let size = client.size
/** True when this rank was restarted from a snapshot; restartDir is where its image is. */
export let isRestart = false
export let restartDir: string | null = null
/** True when this rank was moved to this node by a migration (a restart with OMPX_MIGRATED=1). */
export let migrated = false
/** True when not run under ompx. */
export const standalone = client.standalone

function sync(): void {
  ;({ rank, size, isRestart, restartDir, migrated } = client)
}

/** Connect to the node's ompx daemon and pass the INIT barrier (after onRestart, on a restart). */
export async function init(): Promise<void> {
  try {
    await client.init()
  } finally {
    sync()
  }
}

/** Leave the job's checkpoints (FIN) and close the connection. */
export const finalize = (): Promise<void> => client.finalize()

/** Called with an empty directory to write this rank's state into; the app is held meanwhile. info.migrating: this rank is moving. */
export const onCheckpoint = (cb: (dir: string, info: CheckpointInfo) => void | Promise<void>): void => client.onCheckpoint(cb)
/** Called when a checkpoint or migration is over (or abandoned) and the app goes on; info.migrated: the ranks that moved. */
export const onContinue = (cb: (info: ContinueInfo) => void | Promise<void>): void => client.onContinue(cb)
/** Called by init() on a restart, with the directory holding the state onCheckpoint wrote; info.migrated after a move. */
export const onRestart = (cb: (dir: string, info: RestartInfo) => void | Promise<void>): void => {
  client.onRestart(async (dir, info) => {
    sync()
    await cb(dir, info)
  })
}
/** Called when a checkpoint taken with --term is over (or this rank moves: info.migrating), before the process exits 0. */
export const onTerminate = (cb: (info: TerminateInfo) => void | Promise<void>): void => client.onTerminate(cb)
/** The checkpoint or migration round under way (inside the callbacks), or null. */
export const currentRound = (): CheckpointInfo | null => client.round

/** Checkpoint the whole job; resolves when the snapshot is complete. */
export const requestCheckpoint = (opts?: { term?: boolean }): Promise<CheckpointTicket> => client.requestCheckpoint(opts)
/** Move ranks to other nodes (entries: { rank, onto?, nearRank?, offNode? }); resolves when they run there. */
export const requestMigrate = (prefs: MigratePreference[]): Promise<MigrateOutcome> => client.requestMigrate(prefs)

/** Between quiesceStart() and quiesceEnd() a checkpoint waits (PREP STALL) instead of capturing. */
export const quiesceStart = (): void => client.quiesceStart()
export const quiesceEnd = (): void => client.quiesceEnd()

/** Store a value job-wide (key: no spaces, at most 256 bytes; value: at most 1 MiB). */
export const put = (key: string, value: Uint8Array | string): Promise<void> => client.put(key, value)
/** Fetch a value; waits until some rank has put it. */
export const get = (key: string): Promise<Uint8Array> => client.get(key)
export const getString = (key: string): Promise<string> => client.getString(key)
/** Wait until every rank entered the barrier of that name. */
export const barrier = (name?: string): Promise<void> => client.barrier(name)

/** Await this in a CPU-bound loop: it is where checkpoint requests are answered. */
export const yieldToRuntime = (): Promise<void> => client.yieldToRuntime()
