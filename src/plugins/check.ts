/**
 * What makes a plugin object usable: the fields every kind must have (checked for built-in and
 * external plugins alike, so a broken one is a PluginFailure, never a crash later) and the
 * defaults a CRS may leave out. Apart from load.ts, which finds and imports plugin files.
 */
import { PARAM_KEY } from '../params/file'
import { PLUGIN_KINDS, type PluginKind } from '../params/core'
import type { AnyPlugin, CrsPlugin, HostApi } from './types'

/**
 * A CRS that needs nothing special to start ranks may leave its lifecycle hooks out: its ranks
 * are spawned plainly, and a restart is a fresh start that reads its image from
 * OMPX_RESTART_DIR (what crs self does explicitly).
 */
export function withDefaults(p: AnyPlugin, host: HostApi): AnyPlugin {
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

/** What a value is, for messages: "null", "an array", "an object", "a string". */
export function describe(x: unknown): string {
  if (x === null) return 'null'
  if (Array.isArray(x)) return 'an array'
  return typeof x === 'object' ? 'an object' : `a ${typeof x}`
}
