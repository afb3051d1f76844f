/**
 * The node contract: how the HNP's job code talks to the ranks of one job on one node. It sits
 * below both halves — the HNP side (src/hnp: job runner, coordinators) calls it, and two sides
 * implement it: the in-process node (src/orted's LocalDaemon, served inside `ompx run`) and the
 * daemon link (src/hnp/launch/daemon-link.ts, an `ompx orted` over the wire). Job code never
 * knows which one it holds.
 */
import type { ProcInfo } from '../runtime/job'
import type { FileReceiver } from '../sstore/file-receiver'
import type { SnapshotSink } from '../sstore/types'
import type { NodeToSnapc, PmiJobWire, SnapcToNode } from '../wire/messages'

/** Who the rank is in its job: what the node turns into OMPI_COMM_WORLD_* / OMPX_* variables. */
export interface JobIdentity {
  jobid: string
  size: number
  universeSize: number
  /** What the node's PMI server serves the job's MPI ranks (mode, PMI_process_mapping). */
  pmi?: PmiJobWire
}

/** One rank to start. The node writes its environment (see src/orted/rank-env.ts). */
export interface LaunchSpec {
  proc: ProcInfo
  argv: string[]
  cwd: string
  /** The app context's variables (-x): added to the node's own environment. */
  appEnv: Record<string, string>
  /** Whether this rank reads forwarded stdin. */
  stdin: boolean
  /**
   * Set when the rank restarts from an image: where it is, whether it was staged to the node, and
   * whether this is a migration (the rank moved here while its job ran on).
   */
  restart?: { dir: string; staged: boolean; migrated?: boolean }
  /** The job's CRS: the node starts, captures and restores the rank through its hooks. */
  crs?: string
}

export interface RankExit {
  rank: number
  pid: number
  node: string
  /** Exit code, or null when a signal ended the rank. */
  code: number | null
  signal: NodeJS.Signals | null
}

/** What a node tells the job about its ranks. */
export interface NodeJobEvents {
  /**
   * A chunk of a rank's output. A promise means "read no more of this rank's output until it
   * resolves": the node stops reading the rank's pipe, so a rank writing faster than its output
   * is delivered blocks in write(2) instead of filling memory or the control channel.
   */
  output(rank: number, stream: 'stdout' | 'stderr', chunk: Uint8Array): void | Promise<void>
  /** Called once per rank, after all its output has been delivered. */
  exit(info: RankExit): void
  /** The rank is running with this pid (on its node). */
  launched?(rank: number, pid: number): void
  /** Checkpoint and app-coordinator traffic for the HNP's coordinators. */
  report?(msg: NodeToSnapc): void
  /** The HNP's receiver of a rank's files for a checkpoint in progress, or null if none is expected. */
  snapshotReceiver?(target: { ref: string; seq: number; rank: number }): FileReceiver | null
  /** The node's daemon died or went silent: its ranks are gone. */
  lost?(node: string, reason: string): void
}

/** One job's ranks on one node. */
export interface NodeJob {
  readonly node: string
  /**
   * True when the node runs inside the HNP's process, so it shares the HNP's file system view
   * (a restart reads images in place instead of staging them to the node).
   */
  readonly inProcess: boolean
  /**
   * Start ranks; rejects when a program cannot be started on this node. `verified`, on a
   * restart: the images' checksums, still being read. No rank may run from its image before it
   * resolves; when it rejects, the ranks are ended (never continued) and the call rejects.
   */
  launch(job: JobIdentity, specs: LaunchSpec[], verified?: Promise<void>): Promise<void>
  /** Checkpoint, app-coordinator and file traffic from the HNP's coordinators. */
  deliver(msg: SnapcToNode): void
  /** Where a restarting rank's image goes when it is staged to this node before its launch. */
  imageSink(rank: number): SnapshotSink
  pids(): Map<number, number>
  signal(sig: NodeJS.Signals, ranks?: number[]): void
  stdin(rank: number, data: Uint8Array | null): void
  /** Ranks running or being started. */
  running(): number[]
  /** Stop tracking ranks that can no longer report (their node is gone). */
  forget(ranks: number[]): void
}

/** A node as the HNP holds it: in-process, or an `ompx orted` behind a daemon link. */
export interface NodeHandle {
  readonly node: string
  /** Local pid of the daemon serving this node (the HNP's own when in-process). */
  readonly pid: number
  /** This node's share of a job. `sessionDir`: the job's session directory on the HNP. */
  attach(jobid: string, events: NodeJobEvents, sessionDir: string): NodeJob
  /** The job is over: the node drops everything it kept for it (app socket, staged images, dirs). */
  detach(jobid: string): void
  /** The HNP is going away: end every rank this node runs, and the daemon with them. */
  shutdown(): void
}
