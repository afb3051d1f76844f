/**
 * Finding and loading plugins. External plugins are plain .ts/.js/.mjs files imported at run time
 * by absolute path (Bun transpiles .ts even inside the compiled binary). Every problem with a
 * plugin becomes a `PluginFailure` instead of an exception: one broken file must never stop a job
 * that does not need it.
 */
import { readdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { errorMessage } from '../errors'
import { PARAM_KEY } from '../params/file'
import type { Params } from '../params/params'
import { createHost } from './host'
import { PLUGIN_KINDS, type PluginKind } from '../params/core'
import type { AnyPlugin, CrsPlugin, HostApi, PluginFactory } from './types'

export interface PluginFailure {
  file: string
  reason: string
}

export type PluginDirOrigin = '--plugin-dir' | 'OMPX_PLUGIN_PATH' | 'plugin_path' | 'binary' | 'home'

export interface PluginDir {
  dir: string
  origin: PluginDirOrigin
  /** Filled in by loading: "missing" dirs are skipped silently unless given with --plugin-dir. */
  status?: 'ok' | 'missing' | 'unreadable'
  files?: number
}

export interface LoadedPlugin {
  plugin: AnyPlugin
  file: string
}

/** A slow import or factory must not hang every ompx command. */
export const PLUGIN_LOAD_TIMEOUT_MS = 5000
const PLUGIN_FILE = /\.(ts|js|mjs)$/

/** Search order: --plugin-dir, OMPX_PLUGIN_PATH, plugin_path, <binary dir>/plugins, ~/.ompx/plugins. */
export function pluginSearchDirs(params: Params, pluginDirs: string[] = [], execPath = process.execPath): PluginDir[] {
  const colonList = (v: string | undefined) => (v ?? '').split(':').filter(Boolean)
  const candidates: PluginDir[] = [
    ...pluginDirs.map((dir) => ({ dir, origin: '--plugin-dir' as const })),
    ...colonList(params.env.OMPX_PLUGIN_PATH).map((dir) => ({ dir, origin: 'OMPX_PLUGIN_PATH' as const })),
    ...colonList(params.get('plugin_path')).map((dir) => ({ dir, origin: 'plugin_path' as const })),
    { dir: join(dirname(execPath), 'plugins'), origin: 'binary' },
    { dir: join(params.home || homedir(), '.ompx', 'plugins'), origin: 'home' },
  ]
  const seen = new Set<string>()
  return candidates
    .map((c) => ({ ...c, dir: resolve(params.cwd, c.dir) }))
    .filter((c) => !seen.has(c.dir) && !!seen.add(c.dir))
}

/** Plugin files of one dir: `<dir>/*.{ts,js,mjs}` and `<dir>/<kind>/*`, sorted for a stable order. */
export function pluginFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    const st = statSafe(path)
    if (st?.isFile() && isPluginFileName(name)) out.push(path)
    else if (st?.isDirectory() && (PLUGIN_KINDS as readonly string[]).includes(name)) {
      let inner: string[] = []
      try {
        inner = readdirSync(path).sort()
      } catch {}
      for (const f of inner) if (isPluginFileName(f) && statSafe(join(path, f))?.isFile()) out.push(join(path, f))
    }
  }
  return out
}

/** `_helper.ts`, dotfiles and type declarations are not plugins. */
function isPluginFileName(name: string): boolean {
  return PLUGIN_FILE.test(name) && !name.endsWith('.d.ts') && !name.startsWith('.') && !name.startsWith('_')
}

function statSafe(path: string) {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** Load every plugin file of every dir; marks each dir's status as a side effect. */
export async function loadPluginDirs(
  dirs: PluginDir[],
  params: Params,
): Promise<{ loaded: LoadedPlugin[]; failures: PluginFailure[] }> {
  const loaded: LoadedPlugin[] = []
  const failures: PluginFailure[] = []
  for (const d of dirs) {
    let files: string[]
    try {
      if (!statSync(d.dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
      files = pluginFiles(d.dir)
      d.status = 'ok'
      d.files = files.length
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      d.status = code === 'ENOENT' ? 'missing' : 'unreadable'
      // Implicit dirs usually don't exist; a dir the user named is worth a word either way.
      if (d.origin === '--plugin-dir') {
        failures.push({ file: d.dir, reason: code === 'ENOENT' ? 'no such directory' : `cannot read directory: ${errorMessage(err)}` })
      }
      continue
    }
    for (const file of files) {
      const r = await loadPluginFile(file, params)
      if ('reason' in r) failures.push(r)
      else for (const plugin of r.plugins) loaded.push({ plugin, file })
      if ('rejected' in r) failures.push(...(r.rejected ?? []))
    }
  }
  return { loaded, failures }
}

type FileResult = PluginFailure | { plugins: AnyPlugin[]; rejected?: PluginFailure[] }

async function loadPluginFile(file: string, params: Params): Promise<FileResult> {
  let mod: { default?: unknown }
  try {
    mod = await withTimeout(import(file), 'import')
  } catch (err) {
    return { file, reason: err instanceof LoadTimeout ? err.message : `import failed: ${firstLine(err)}` }
  }
  if (typeof mod.default !== 'function') {
    const got = mod.default === undefined ? 'no default export' : `default export is ${describe(mod.default)}`
    return { file, reason: `${got}; expected a plugin factory (host) => plugin` }
  }
  return runFactory(mod.default as PluginFactory, params, file, `plugin:${basename(file)}`)
}

/** Call a factory (built-in or external) and keep only valid plugins; invalid ones are failures. */
export async function runFactory(factory: PluginFactory, params: Params, file: string, tag: string): Promise<FileResult> {
  const { host, retag } = createHost(params, tag)
  let result: unknown
  try {
    result = await withTimeout(Promise.resolve().then(() => factory(host)), 'factory')
  } catch (err) {
    return { file, reason: err instanceof LoadTimeout ? err.message : `factory failed: ${firstLine(err)}` }
  }
  const many = Array.isArray(result)
  const items: unknown[] = many ? (result as unknown[]) : [result]
  const plugins: AnyPlugin[] = []
  const rejected: PluginFailure[] = []
  items.forEach((item, i) => {
    const problem = checkPlugin(item)
    if (problem) rejected.push({ file, reason: many ? `plugin #${i + 1}: ${problem}` : problem })
    // Kept as-is (not copied): a plugin may be a class instance whose methods live on its prototype.
    else plugins.push(withDefaults(item as AnyPlugin, host))
  })
  if (plugins.length === 1) retag(`${plugins[0]!.kind}:${plugins[0]!.name}`)
  if (!many && rejected.length) return rejected[0]!
  return { plugins, rejected }
}

/**
 * A CRS that needs nothing special to start ranks may leave its lifecycle hooks out: its ranks
 * are spawned plainly, and a restart is a fresh start that reads its image from
 * OMPX_RESTART_DIR (what crs self does explicitly).
 */
function withDefaults(p: AnyPlugin, host: HostApi): AnyPlugin {
  if (p.kind !== 'crs') return p
  const hooks = p as Partial<CrsPlugin> & AnyPlugin
  if (!hooks.launch && !hooks.restore) hooks.passesPmiFd ??= true
  hooks.launch ??= async (req) => host.spawnRank(req)
  hooks.restore ??= async (req) => host.spawnRank(req)
  hooks.captureEndsRankOnTerm ??= false
  return p
}

const REQUIRED: Record<PluginKind, { key: string; type: 'function' | 'string[]' }[]> = {
  crs: [
    { key: 'notCheckpointable', type: 'function' },
    { key: 'capture', type: 'function' },
  ],
  mapper: [{ key: 'map', type: 'function' }],
  launcher: [
    { key: 'accepts', type: 'function' },
    { key: 'launch', type: 'function' },
  ],
  transport: [
    { key: 'schemes', type: 'string[]' },
    { key: 'listen', type: 'function' },
    { key: 'connect', type: 'function' },
  ],
  sstore: [
    { key: 'rankDir', type: 'function' },
    { key: 'push', type: 'function' },
  ],
}

/** Why `x` is not a usable plugin, or null when it is. */
export function checkPlugin(x: unknown): string | null {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    return `factory returned ${describe(x)}; expected a plugin object or an array of them`
  }
  const p = x as Record<string, unknown>
  if (!(PLUGIN_KINDS as readonly unknown[]).includes(p.kind)) {
    return `kind ${JSON.stringify(p.kind)} is not one of ${PLUGIN_KINDS.join(', ')}`
  }
  if (typeof p.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(p.name)) {
    return `name ${JSON.stringify(p.name)} is not a plugin name (letters, digits, _ . -)`
  }
  const who = `${p.kind} plugin "${p.name}"`
  if (typeof p.priority !== 'number' || !Number.isFinite(p.priority)) return `${who}: priority must be a number`
  if (p.description !== undefined && typeof p.description !== 'string') return `${who}: description must be a string`
  for (const req of REQUIRED[p.kind as PluginKind]) {
    const v = p[req.key]
    if (req.type === 'function' && typeof v !== 'function') return `${who} has no ${req.key}() function`
    if (req.type === 'string[]' && !(Array.isArray(v) && v.every((s) => typeof s === 'string'))) {
      return `${who}: ${req.key} must be an array of strings`
    }
  }
  if (p.params !== undefined) {
    if (!Array.isArray(p.params)) return `${who}: params must be an array`
    for (const d of p.params as Record<string, unknown>[]) {
      if (typeof d?.key !== 'string' || !PARAM_KEY.test(d.key)) return `${who}: param key ${JSON.stringify(d?.key)} is invalid`
      if (typeof d.description !== 'string') return `${who}: param "${d.key}" needs a description`
      if (d.default !== undefined && typeof d.default !== 'string') return `${who}: param "${d.key}" default must be a string`
    }
  }
  return null
}

class LoadTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LoadTimeout(`${what} did not finish within ${PLUGIN_LOAD_TIMEOUT_MS / 1000} s`)), PLUGIN_LOAD_TIMEOUT_MS)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

function describe(x: unknown): string {
  if (x === null) return 'null'
  if (Array.isArray(x)) return 'an array'
  return typeof x === 'object' ? 'an object' : `a ${typeof x}`
}

function firstLine(err: unknown): string {
  return errorMessage(err).split('\n')[0]!.trim() || 'unknown error'
}
