/**
 * The plugin kinds (Open MPI's MCA frameworks, typed). A plugin module's default export is a
 * `PluginFactory`: it receives the host API and returns one or more plugins. Built-ins under
 * `plugins/<kind>/<name>.ts` and external files loaded at run time use the same shape, so an
 * external plugin never imports anything bundled in the binary.
 */
import type { ParamDef } from '../params/types'
import type { Allocation, AppContext, NodeInfo, Placement } from '../runtime/job'

export const PLUGIN_KINDS = ['crs', 'mapper', 'transport', 'launcher', 'sstore'] as const
export type PluginKind = (typeof PLUGIN_KINDS)[number]

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
  /** Start one `ompx orted` per node of `req.nodes`. */
  launch(req: DaemonLaunchRequest): Promise<DaemonProcess[]>
}

// ---- crs -----------------------------------------------------------------------------------

/** A rank's app coordinator as its daemon holds it (src/orted/snapc): what CRS `self` drives. */
export interface AppCoordinatorHandle {
  /** Stage 2 for `self`: the app writes its state into `dir`; rejects with the app's reason. */
  capture(dir: string): Promise<void>
}

/** One rank's capture, run by the rank's daemon after every rank of the job is prepared. */
export interface CaptureRequest {
  rank: number
  node: string
  /** Host pid of the rank's process (the process the daemon started). */
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
  /** Capture one rank into `req.dir`. Throws (ActionableError or Error) with the reason on failure. */
  capture(req: CaptureRequest): Promise<CaptureResult>
}
// ---- transport -----------------------------------------------------------------------------

/** A raw, unauthenticated byte stream; src/wire adds framing and the HMAC handshake on top. */
export interface RawConn {
  /** Human-readable peer address for logs ("127.0.1.2:41234", "unix:/path"). */
  readonly remote: string
  /** Send `bytes`, which the connection now owns: the caller must not change them afterwards. */
  write(bytes: Uint8Array): void
  onData(cb: (bytes: Uint8Array) => void): void
  onClose(cb: (err?: Error) => void): void
  close(): void
}

export interface TransportListener {
  /** What peers pass to `connect`, e.g. tcp://127.0.1.1:40123 or unix:///run/x.sock */
  uri: string
  close(): void
}

export interface TransportPlugin extends PluginBase<'transport'> {
  /** URI schemes this transport serves ("tcp", "unix"). */
  schemes: string[]
  /** Listen on an address (host for tcp, path for unix; port 0 = any). */
  listen(address: string, onConn: (conn: RawConn) => void): Promise<TransportListener>
  connect(uri: string): Promise<RawConn>
}

// ---- sstore --------------------------------------------------------------------------------

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

/** Typed helper for authors: `export default definePlugin(host => ({ kind: 'mapper', ... }))`. */
export function definePlugin(factory: PluginFactory): PluginFactory {
  return factory
}
