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
import type { Params } from '../params/params'
import { createHost } from './host'
import { PLUGIN_KINDS } from '../params/core'
import { checkPlugin, describe, withDefaults } from './check'
import type { AnyPlugin, PluginFactory } from './types'

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
      // An implicit dir that does not exist (the usual case) costs no error object (issue #16).
      const st = statSync(d.dir, { throwIfNoEntry: false })
      if (!st) {
        d.status = 'missing'
        if (d.origin === '--plugin-dir') failures.push({ file: d.dir, reason: 'no such directory' })
        continue
      }
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
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
    // Only a pending factory needs the time limit: no timer for the built-ins (issue #16).
    result = factory(host)
    if (result instanceof Promise) result = await withTimeout(result, 'factory')
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

class LoadTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LoadTimeout(`${what} did not finish within ${PLUGIN_LOAD_TIMEOUT_MS / 1000} s`)), PLUGIN_LOAD_TIMEOUT_MS)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

function firstLine(err: unknown): string {
  return errorMessage(err).split('\n')[0]!.trim() || 'unknown error'
}
