/**
 * The plugin kinds (Open MPI's MCA frameworks, typed). A plugin module's default export is a
 * `PluginFactory`: it receives the host API and returns one or more plugins. Built-ins under
 * `plugins/<kind>/<name>.ts` and external files loaded at run time use the same shape, so an
 * external plugin never imports anything bundled in the binary.
 */
import type { PluginKind } from '../params/core'
import type { ParamDef } from '../params/types'
import type { Allocation, AppContext, NodeInfo, Placement } from '../runtime/job'
import type { RankProcess, SpawnRequest } from '../runtime/rank-process'
import type { SnapshotFileInfo, SnapshotLocation, SnapshotSink } from '../sstore/types'
import type { Transport } from '../wire/transport'


/** What the binary offers a plugin: no imports needed, so external files stay self-contained. */
export interface HostApi {
  version: string
  log: {
    info(...a: unknown[]): void
    warn(...a: unknown[]): void
    debug(...a: unknown[]): void
    error(...a: unknown[]): void
  }
  /** Current value of a parameter (after --mca, env and params files), or undefined. */
  param(key: string): string | undefined
  /** An error whose message is shown to the user as-is (one line, non-zero exit). */
  ActionableError: new (message: string, exitCode?: number) => Error
  /**
   * Start a rank as a plain process leading its own process group: what a CRS's launch and
   * restore hooks use when they need nothing special (crs self and none).
   */
  spawnRank(req: SpawnRequest): RankProcess
}

interface PluginBase<K extends PluginKind> {
  kind: K
  name: string
  /** Higher wins when nothing selects a plugin by name. */
  priority: number
  description: string
  /** Parameters this plugin reads; listed by `ompx info --param`. */
  params?: ParamDef[]
}

// ---- mapper --------------------------------------------------------------------------------

export interface MapRequest {
  allocation: Allocation
  apps: AppContext[]
  /** Text after the mapper name in --map-by, e.g. "2:node" for ppr:2:node. */
  arg?: string
  oversubscribe: boolean
}

export interface MapperPlugin extends PluginBase<'mapper'> {
  /**
   * Place every rank of every app on a node. Apps whose `np` is undefined get a count from the
   * mapper (one per slot, per ppr or per seq line). Must throw ActionableError when the ranks
   * do not fit and oversubscription is not allowed.
   */
  map(req: MapRequest): Placement[]
}

// ---- launcher ------------------------------------------------------------------------------

/** What a launcher needs to start `ompx orted` on the nodes of an allocation. */
export interface DaemonLaunchRequest {
  nodes: NodeInfo[]
  /** Where daemons call back: the HNP's URI (tcp://addr:port). */
  hnpUri: string
  /**
   * The job secret, hex. It must reach the daemon on its stdin as the first line, never in
   * argv or logs. The launcher keeps that stdin open: its EOF tells the daemon the HNP is gone.
   */
  secret: string
  /** Path of the ompx binary on this machine (process.execPath). */
  execPath: string
  /** Extra arguments for every `ompx orted` (e.g. --mca pairs to pass on). */
  ortedArgs: string[]
  /** Environment for daemons (OMPX_MCA_* settings), on top of the launcher's own. */
  env: Record<string, string>
  /**
   * The job must outlive the loss of a node (--enable-recovery): a launcher whose daemons share
   * a fate (one srun step) must not end them all when one fails.
   */
  tolerateNodeLoss?: boolean
}

/** A started daemon process as the launcher sees it (the daemon then registers over the wire). */
export interface DaemonProcess {
  node: string
  /** Local pid of what the launcher started (orted itself, or ssh / srun). */
  pid: number
  /** Resolves with the exit code when that process ends. */
  exited: Promise<number | null>
  /** Lines the process wrote to stderr before registering, for error messages. */
  stderrTail(): string
  kill(signal?: NodeJS.Signals): void
}

export interface LauncherPlugin extends PluginBase<'launcher'> {
  /** True when this launcher can serve the given nodes here (e.g. all are this host). */
  accepts(nodes: NodeInfo[]): boolean
  /** When it does not accept them: why, in one line for the user (e.g. "not inside a Slurm job"). */
  refusal?(nodes: NodeInfo[]): string | undefined
  /** Start one `ompx orted` per node of `req.nodes`. */
  launch(req: DaemonLaunchRequest): Promise<DaemonProcess[]>
}

// ---- crs -----------------------------------------------------------------------------------
//
// A CRS owns a rank's whole life on its node, so the daemon and the coordinators call hooks and
// never name a backend:
//   launch   start a rank the way this CRS can later capture it (criu: its own pid namespace)
//   capture  write the rank's image into a directory (stage 2 of a checkpoint)
//   restore  start a rank on this node from an image
//   cleanup  RankProcess.cleanup(), returned by launch and restore: runs once the rank is over
// `ompx migrate` uses the same hooks: capture some ranks, restore them on another node.

/** A rank's app coordinator as its daemon holds it (src/orted/snapc): what CRS `self` drives. */
export interface AppCoordinatorHandle {
  /** Stage 2 for `self`: the app writes its state into `dir`; rejects with the app's reason. */
  capture(dir: string): Promise<void>
}

/** One rank to start on this node: its command and its full environment (written by the node). */
export interface RankStart extends SpawnRequest {
  jobid: string
  rank: number
  node: string
}

/** One rank to bring back from its image on this node. */
export interface RankRestore extends RankStart {
  /** The rank's image: its snapshot directory, or where it was staged on this node. Read only. */
  imageDir: string
  /** Node-local scratch for this rank (restore logs, pid files), removed when the job ends here. */
  workDir: string
  /**
   * Only for a CRS with `restoresBeforeVerified`: the image's checksums, still being read. The
   * rank must not run before it resolves; when it rejects, restore ends the rank and rejects.
   */
  verified?: Promise<void>
}

/** One rank's capture, run by the rank's daemon after every rank of the job is prepared. */
export interface CaptureRequest {
  rank: number
  node: string
  /** Host pid of the rank's process (what launch or restore returned). */
  pid: number
  /** Empty directory the image goes into (the sstore's local snapshot dir of this rank). */
  dir: string
  /** Checkpoint options: term, stop. */
  options: string[]
  /** The rank's app coordinator, when it connected and passed INIT; null otherwise. */
  app: AppCoordinatorHandle | null
}

export interface CaptureResult {
  /** Whatever restore needs later (criu: version, options, namespace root); kept in the rank's metadata. */
  info?: Record<string, unknown>
}

export interface CrsPlugin extends PluginBase<'crs'> {
  /** Null when jobs using this CRS can be checkpointed; otherwise the reason they cannot. */
  notCheckpointable(): string | null
  /**
   * True when checkpoints go through the rank's app coordinator (stage 1 PREP, stage 2 CAPTURE):
   * a rank without one makes the job not checkpointable. False for transparent CRSs (criu).
   */
  needsApp: boolean
  /**
   * True when launch and restore start the rank with host.spawnRank, or otherwise give it fd 3
   * as asked by `SpawnRequest.pmiFd` (the PMI socketpair). Else the node serves PMI to its ranks
   * in port mode (docs/pmi.md).
   */
  passesPmiFd?: boolean
  /** Start a rank. Rejects (ActionableError or Error) with the reason it cannot start here. */
  launch(req: RankStart): Promise<RankProcess>
  /** Capture one rank into `req.dir`. Throws (ActionableError or Error) with the reason on failure. */
  capture(req: CaptureRequest): Promise<CaptureResult>
  /**
   * True when a terminating capture (`term`) itself ends the rank (criu's dump kills the tree):
   * its daemon then holds the rank's exit until the checkpoint is released or abandoned, so a
   * dump that turns out bad is reported as a loss, a good one as checkpointed-and-terminated.
   */
  captureEndsRankOnTerm: boolean
  /** Start a rank from its image in `req.imageDir`; rejects with the reason (one line). */
  restore(req: RankRestore): Promise<RankProcess>
  /**
   * True when restore can bring the rank back held (criu: --leave-stopped) while `req.verified`
   * is pending, and let it run only once that resolved. Otherwise the node calls restore after.
   */
  restoresBeforeVerified?: boolean
  /**
   * True when capture writes each image file through write()/splice() and never goes back to one
   * it closed (criu): the node may then seal finished files while the rest are written
   * (src/sstore/flush-ahead.ts). Not for a CRS whose program writes its own images (self).
   */
  writesImagesOnce?: boolean
}
// ---- transport -----------------------------------------------------------------------------

/** A byte-stream transport (src/wire/transport.ts); src/wire adds framing and the handshake. */
export interface TransportPlugin extends PluginBase<'transport'>, Transport {}

// ---- sstore --------------------------------------------------------------------------------

export interface SStorePlugin extends PluginBase<'sstore'> {
  /** Where the CRS writes this rank's image on its node. */
  rankDir(loc: SnapshotLocation): string
  /**
   * True when `rankDir` already is the global store (shared file system): nothing to transfer.
   * False: `push` moves the files, and ranks may be released before it finishes.
   */
  direct: boolean
  /** Move a captured local snapshot to the global store; removes the local copy when done. */
  push(loc: SnapshotLocation, files: SnapshotFileInfo[], sink: SnapshotSink): Promise<void>
}
export interface PluginByKind {
  crs: CrsPlugin
  mapper: MapperPlugin
  transport: TransportPlugin
  launcher: LauncherPlugin
  sstore: SStorePlugin
}
export type AnyPlugin = PluginByKind[PluginKind]

export type PluginFactory = (host: HostApi) => AnyPlugin | AnyPlugin[] | Promise<AnyPlugin | AnyPlugin[]>

/** A plugin compiled into the binary (plugins/builtin.ts); `file` names it in messages. */
export interface BuiltinPlugin {
  file: string
  factory: PluginFactory
}

/** Typed helper for authors: `export default definePlugin(host => ({ kind: 'mapper', ... }))`. */
export function definePlugin(factory: PluginFactory): PluginFactory {
  return factory
}
