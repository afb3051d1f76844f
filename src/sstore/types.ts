/**
 * Snapshot metadata, as written to disk. Layout of one global snapshot:
 *
 *   <global dir>/ompx_global_snapshot_<id>.ckpt/
 *     global.json          committed last (temp file, fsync, rename): the only thing that lists seqs
 *     <seq>/rank_<r>/      one local snapshot per rank: the CRS's files + ompx-rank.json
 *     <seq>/kv.json        the ranks' key-value store at that seq (listed with size + sum)
 *
 * A seq directory that global.json does not list is an interrupted checkpoint: never shown,
 * never restarted from, removed by the next successful commit.
 */

export const GLOBAL_META = 'global.json'
export const RANK_META = 'ompx-rank.json'
/** The kv store of a seq, in the seq dir beside the rank dirs. */
export const KV_FILE = 'kv.json'
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
  /** The rank's partial output lines at the capture, printed before its output after a restart. */
  outputTail?: OutputTail
}

/** A rank's unterminated last line of stdout / stderr, base64 (src/orted/output-tails.ts). */
export interface OutputTail {
  stdout?: string
  stderr?: string
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
  /**
   * Key-value pairs the ranks had put (base64 values) when the snapshot was taken. Handed to
   * `commit`, which moves them to `<seq>/kv.json`; filled in again by `verify` from that file.
   * Snapshots written before kv.json existed hold them here, inline in global.json.
   */
  kv?: Record<string, string>
  /** `<seq>/kv.json` (path is always KV_FILE): its size and checksum. */
  kvFile?: SnapshotFileInfo
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

/** Which local snapshot: rank `rank` of sequence `seq` of global snapshot `ref`. */
export interface SnapshotLocation {
  /** The HNP's global snapshot directory (sstore_base_global_snapshot_dir). */
  globalDir: string
  /** ompx_global_snapshot_<id>.ckpt */
  ref: string
  seq: number
  rank: number
  /** This node's local directory (node-local scratch; the stage store writes here first). */
  nodeDir: string
}

/** A file of a local snapshot: path relative to the rank dir, size, checksum ("crc32:1a2b3c4d"). */
export interface SnapshotFileInfo {
  path: string
  size: number
  sum: string
}

/** How a node hands snapshot bytes to the HNP (over the transport, or in-process). */
export interface SnapshotSink {
  /** Send one chunk of `path`; `codec` says how `data` is encoded. Resolves when it may send more. */
  write(path: string, offset: number, data: Uint8Array, codec: 'raw' | 'zstd', last: boolean): Promise<void>
  /**
   * True when the sink is done with `data` once write() resolves (it copied or wrote it): the
   * sender may then reuse the buffer for the next chunk instead of allocating a new one.
   */
  readonly releasesData?: boolean
}
