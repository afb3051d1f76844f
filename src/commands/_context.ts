/**
 * What every command starts with: parameters from all sources and the plugin registry, built
 * from the scanned command line. Problems that should not stop the command (unknown --mca keys,
 * plugins that failed to load) are warned about once per process, as mpirun does.
 */
import type { Scanned } from '../args/scan'
import type { RuntimeOptionValues } from '../args/shared'
import { log } from '../log'
import { checkTypedParams, registerCoreParams } from '../params/core'
import { Params, type ParamsOptions } from '../params/params'
import { Registry } from '../plugins/registry'

export interface Runtime {
  params: Params
  registry: Registry
}

export interface RuntimeOptions extends Omit<ParamsOptions, 'cli'> {
  /** Warn about plugin load failures on stderr (default true; `ompx plugins` lists them itself). */
  warnFailures?: boolean
  execPath?: string
}

const warned = new Set<string>()
function warnOnce(message: string): void {
  if (warned.has(message)) return
  warned.add(message)
  log.warn(message)
}

export async function createRuntime(
  scanned: Scanned<Pick<RuntimeOptionValues, 'mca' | 'plugin-dir'>>,
  opts: RuntimeOptions = {},
): Promise<Runtime> {
  const params = new Params({ ...opts, cli: scanned.opts.mca ?? [] })
  registerCoreParams(params)
  // Loaded here, not at the top: the built-in plugins are a chunk of their own, which a tool
  // failing early (no HNP, bad arguments) never needs to evaluate.
  const { BUILTIN_PLUGINS } = await import('../../plugins/builtin')
  const registry = await Registry.load({
    params,
    builtins: BUILTIN_PLUGINS,
    pluginDirs: scanned.opts['plugin-dir'] ?? [],
    execPath: opts.execPath,
  })
  // Only now are plugin params registered, so only now is "unknown" meaningful.
  checkTypedParams(params)
  for (const key of params.unknownKeys()) {
    warnOnce(`unknown MCA parameter "${key}" (set by ${params.whereSet(key)}); no loaded plugin uses it`)
  }
  if (opts.warnFailures !== false) {
    for (const f of registry.failures) warnOnce(`plugin ${f.file} not loaded: ${f.reason}`)
  }
  return { params, registry }
}
