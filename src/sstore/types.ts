/**
 * Snapshot metadata, as written to disk. Layout of one global snapshot:
 *
 *   <global dir>/ompx_global_snapshot_<id>.ckpt/
 *     global.json          committed last (temp file, fsync, rename): the only thing that lists seqs
 *     <seq>/rank_<r>/      one local snapshot per rank: the CRS's files + ompx-rank.json
 *
 * A seq directory that global.json does not list is an interrupted checkpoint: never shown,
 * never restarted from, removed by the next successful commit.
 */
import type { SnapshotFileInfo } from '../plugins/types'

export const GLOBAL_META = 'global.json'
export const RANK_META = 'ompx-rank.json'
export const META_VERSION = 1

/** One rank's local snapshot (also written as <seq>/rank_<r>/ompx-rank.json). */
export interface RankMeta {
  rank: number
  /** Node the rank ran on when captured. */
  node: string
  crs: string
  /** Every file of the local snapshot except ompx-rank.json itself, with its checksum. */
  files: SnapshotFileInfo[]
  bytes: number
  captureMs: number
  /** What restore needs (CRS specific). */
  info?: Record<string, unknown>
}

/** One app context of the job, as needed to start it again. */
export interface AppMeta {
  index: number
  np: number
  argv: string[]
  env: Record<string, string>
  cwd: string
}

/** Where each rank ran when the snapshot was taken. */
export interface ProcMeta {
  rank: number
  app: number
  node: string
}

/** One finished checkpoint. */
export interface SeqMeta {
  seq: number
  /** Epoch ms: request received / global metadata committed. */
  started: number
  finished: number
  crs: string
  sstore: string
  /** Options the checkpoint ran with (term, stop). */
  options: string[]
  bytes: number
  /** Phase durations in ms: running, localFinish, storeSync, establish, continue. */
  timing: Record<string, number>
  ranks: RankMeta[]
  procs: ProcMeta[]
  /** Key-value pairs the ranks had put (base64 values) when the snapshot was taken. */
  kv?: Record<string, string>
}

export interface GlobalMeta {
  version: number
  ref: string
  /** Job that took the first seq, and the job of the latest seq. */
  jobid: string
  created: number
  apps: AppMeta[]
  /** Nodes of the allocation the job ran on (names, slots), for restart on the same nodes. */
  nodes: { name: string; slots: number }[]
  /** Parameters the job ran with that a restart must keep (crs, sstore, ...). */
  params: Record<string, string>
  /** Finished checkpoints, oldest first. */
  seqs: SeqMeta[]
}
