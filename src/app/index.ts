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
import { AppClient, type CheckpointTicket } from './client'

export { AppClient, type AppClientOptions, type CheckpointTicket } from './client'

const client = new AppClient()

/** This rank and the job's size (live bindings: set from the environment, final after init()). */
export let rank = client.rank
export let size = client.size
/** True when this rank was restarted from a snapshot; restartDir is where its image is. */
export let isRestart = false
export let restartDir: string | null = null
/** True when not run under ompx. */
export const standalone = client.standalone

function sync(): void {
  ;({ rank, size, isRestart, restartDir } = client)
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

/** Called with an empty directory to write this rank's state into; the app is held meanwhile. */
export const onCheckpoint = (cb: (dir: string) => void | Promise<void>): void => client.onCheckpoint(cb)
/** Called when a checkpoint is over (or abandoned) and the app goes on. */
export const onContinue = (cb: () => void | Promise<void>): void => client.onContinue(cb)
/** Called by init() on a restart, with the directory holding the state onCheckpoint wrote. */
export const onRestart = (cb: (dir: string) => void | Promise<void>): void => {
  client.onRestart(async (dir) => {
    sync()
    await cb(dir)
  })
}
/** Called when a checkpoint taken with --term is over, before the process exits 0. */
export const onTerminate = (cb: () => void | Promise<void>): void => client.onTerminate(cb)

/** Checkpoint the whole job; resolves when the snapshot is complete. */
export const requestCheckpoint = (opts?: { term?: boolean }): Promise<CheckpointTicket> => client.requestCheckpoint(opts)

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
