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

export interface LauncherPlugin extends PluginBase<'launcher'> {
  /** True when this launcher can serve the given nodes here (e.g. all are this host). */
  accepts(nodes: NodeInfo[]): boolean
}

// ---- crs -----------------------------------------------------------------------------------

export interface CrsPlugin extends PluginBase<'crs'> {
  /** Null when jobs using this CRS can be checkpointed; otherwise the reason they cannot. */
  notCheckpointable(): string | null
}

// ---- transport / sstore (shapes filled in by the multi-node and checkpoint issues) ----------

export interface TransportPlugin extends PluginBase<'transport'> {
  schemes: string[]
}

export interface SStorePlugin extends PluginBase<'sstore'> {
  globalDir(): string
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
