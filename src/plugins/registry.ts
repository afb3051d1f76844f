/**
 * The plugin registry: built-ins plus external plugins, one entry per kind+name, and the
 * selection rule every caller uses (explicit name > `--mca <kind>` param > highest priority).
 */
import { ActionableError, PluginError, errorMessage } from '../errors'
import type { Params } from '../params/params'
import { loadPluginDirs, pluginSearchDirs, runFactory, type PluginDir, type PluginFailure } from './load'
import { PLUGIN_KINDS, type PluginKind } from '../params/core'
import type { AnyPlugin, BuiltinPlugin, PluginByKind, TransportPlugin } from './types'

export interface RegistryEntry<K extends PluginKind = PluginKind> {
  kind: K
  name: string
  priority: number
  description: string
  /** "built-in", or the absolute path of the external file. */
  source: 'built-in' | (string & {})
  /** Source of the plugin this one replaced (same kind and name), if any. */
  overrides?: string
  plugin: PluginByKind[K]
}

export interface RegistryOptions {
  params: Params
  /** `--plugin-dir` values, searched first. */
  pluginDirs?: string[]
  /** Binary whose `<dir>/plugins` is searched; defaults to process.execPath. */
  execPath?: string
  /** The compiled-in plugins (plugins/builtin.ts, passed in by the startup wiring). */
  builtins: BuiltinPlugin[]
}

export class Registry {
  private readonly entries = new Map<string, RegistryEntry>()

  private constructor(
    private readonly params: Params,
    /** Files (or --plugin-dir dirs) that could not be used, with why. */
    readonly failures: PluginFailure[],
    /** Every directory searched, in order, with what was found there. */
    readonly dirs: PluginDir[],
  ) {}

  static async load(opts: RegistryOptions): Promise<Registry> {
    const { params } = opts
    const dirs = pluginSearchDirs(params, opts.pluginDirs, opts.execPath)
    const failures: PluginFailure[] = []
    const reg = new Registry(params, failures, dirs)
    for (const b of opts.builtins) {
      const r = await runFactory(b.factory, params, b.file, `built-in:${b.file}`)
      if ('reason' in r) failures.push(r)
      else {
        for (const p of r.plugins) reg.add(p, 'built-in')
        failures.push(...(r.rejected ?? []))
      }
    }
    const external = await loadPluginDirs(dirs, params)
    failures.push(...external.failures)
    const seenExternal = new Set<string>()
    for (const { plugin, file } of external.loaded) {
      const id = `${plugin.kind}:${plugin.name}`
      // Like PATH: the first dir in search order wins among external files.
      if (seenExternal.has(id)) continue
      seenExternal.add(id)
      reg.add(plugin, file)
    }
    for (const e of reg.entries.values()) {
      for (const def of e.plugin.params ?? []) params.register({ ...def, owner: `${e.kind}:${e.name}` })
    }
    return reg
  }

  private add(plugin: AnyPlugin, source: string): void {
    const id = `${plugin.kind}:${plugin.name}`
    const previous = this.entries.get(id)
    this.entries.set(id, {
      kind: plugin.kind,
      name: plugin.name,
      priority: plugin.priority,
      description: plugin.description ?? '',
      source,
      overrides: previous?.source,
      plugin,
    } as RegistryEntry)
  }

  /** Entries in kind order, then highest priority first, then by name. */
  list<K extends PluginKind>(kind?: K): RegistryEntry<K>[] {
    const order = (k: PluginKind) => PLUGIN_KINDS.indexOf(k)
    return [...this.entries.values()]
      .filter((e) => kind === undefined || e.kind === kind)
      .sort((a, b) => order(a.kind) - order(b.kind) || b.priority - a.priority || a.name.localeCompare(b.name)) as RegistryEntry<K>[]
  }

  /** The plugin of that kind and name, if loaded. */
  get<K extends PluginKind>(kind: K, name: string): PluginByKind[K] | undefined {
    return this.entry(kind, name)?.plugin
  }

  /** Like `get`, with where the plugin came from. */
  entry<K extends PluginKind>(kind: K, name: string): RegistryEntry<K> | undefined {
    return this.entries.get(`${kind}:${name}`) as RegistryEntry<K> | undefined
  }

  /** The named plugin, else the one param `<kind>` names, else the highest priority one. */
  select<K extends PluginKind>(kind: K, name?: string): PluginByKind[K] {
    const fromParam = !name
    const wanted = name || this.params.get(kind) || ''
    if (wanted) {
      const hit = this.get(kind, wanted)
      if (hit) return hit
      const available = this.list(kind).map((e) => e.name).sort()
      const where = fromParam && this.params.whereSet(kind) ? `set by ${this.params.whereSet(kind)}; ` : ''
      throw new ActionableError(
        `no ${kind} plugin named "${wanted}" (${where}available: ${available.join(', ') || 'none'})`,
      )
    }
    const best = this.list(kind)[0]
    if (!best) throw new ActionableError(`no ${kind} plugin is available; see 'ompx plugins'`)
    return best.plugin
  }
}

/** An error thrown inside plugin code, tagged `[kind:name]`; user errors pass through untouched. */
export function wrapPluginError(who: { kind: string; name: string }, err: unknown): Error {
  if (err instanceof ActionableError || err instanceof PluginError) return err
  return new PluginError(who.kind, who.name, errorMessage(err), { cause: err })
}

/** Run plugin code (sync or async) so any failure comes out as a PluginError naming the plugin. */
export function callPlugin<T>(who: { kind: string; name: string }, fn: () => T): T {
  try {
    const r = fn()
    if (r instanceof Promise) {
      return r.catch((err) => {
        throw wrapPluginError(who, err)
      }) as T
    }
    return r
  } catch (err) {
    throw wrapPluginError(who, err)
  }
}

/** The transport plugin serving a URI's scheme (tcp://, unix://), highest priority first. */
export function transportFor(registry: Registry, uri: string): TransportPlugin {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase()
  if (!scheme) throw new ActionableError(`"${uri}" is not a URI (expected e.g. tcp://host:port or unix:///path)`)
  const hit = registry.list('transport').find((e) => e.plugin.schemes.includes(scheme))
  if (!hit) {
    const known = registry.list('transport').flatMap((e) => e.plugin.schemes.map((s) => `${s}://`))
    throw new ActionableError(`no transport plugin handles ${scheme}:// URIs (available: ${known.join(', ') || 'none'})`)
  }
  return hit.plugin
}
