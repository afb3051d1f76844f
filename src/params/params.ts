/**
 * MCA parameters. Sources, lowest to highest precedence: built-in default <
 * ~/.ompx/mca-params.conf < ./ompx-params.conf < OMPX_MCA_<key> < --mca key value (last wins).
 * Values are kept as strings, as Open MPI does; the runtime checks every registered parameter
 * against its definition (type, range, allowed values) up front with `check`, and the typed
 * getters apply the same rules on use.
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ActionableError } from '../errors'
import { PARAM_KEY, readParamsFile } from './file'
import { describeNumber, numberFits, paramProblem, parseBool } from './limits'
import type { ParamDef, ParamSource, ParamValue } from './types'

export const ENV_PREFIX = 'OMPX_MCA_'
export const HOME_PARAMS_FILE = join('.ompx', 'mca-params.conf')
export const CWD_PARAMS_FILE = 'ompx-params.conf'

export interface ParamsOptions {
  /** Defaults to os.homedir(). */
  home?: string
  /** Defaults to process.cwd(). */
  cwd?: string
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>
  /** `--mca key value` pairs in command-line order. */
  cli?: [string, string][]
}

interface Setting {
  value: string
  source: Exclude<ParamSource, 'default'>
  origin: string
  /** Where to point the user when the value is bad: "--mca", "OMPX_MCA_x", "file:line". */
  where: string
}

export class Params {
  readonly home: string
  readonly cwd: string
  readonly env: Record<string, string | undefined>
  /** The params files consulted, in precedence order (they need not exist). */
  readonly files: string[]
  private readonly defs = new Map<string, ParamDef>()
  private readonly settings = new Map<string, Setting>()

  constructor(opts: ParamsOptions = {}) {
    this.home = opts.home ?? homedir()
    this.cwd = resolve(opts.cwd ?? process.cwd())
    this.env = opts.env ?? process.env
    this.files = [join(this.home, HOME_PARAMS_FILE), join(this.cwd, CWD_PARAMS_FILE)]
    // Apply sources lowest first: a later write to the map is a higher-precedence source.
    for (const file of this.files) {
      for (const s of readParamsFile(file)) {
        this.settings.set(s.key, { value: s.value, source: 'file', origin: file, where: `${file}:${s.line}` })
      }
    }
    for (const [name, value] of Object.entries(this.env)) {
      const key = name.slice(ENV_PREFIX.length)
      if (!name.startsWith(ENV_PREFIX) || value === undefined || !PARAM_KEY.test(key)) continue
      this.settings.set(key, { value, source: 'env', origin: name, where: name })
    }
    for (const [key, value] of opts.cli ?? []) {
      if (!PARAM_KEY.test(key)) {
        throw new ActionableError(`--mca "${key}" is not a parameter name (letters, digits and _)`)
      }
      this.settings.set(key, { value, source: 'cli', origin: '--mca', where: `--mca ${key}` })
    }
  }

  /** Declare a parameter; registering a key again replaces its definition (plugin overrides). */
  register(def: ParamDef): void {
    if (!PARAM_KEY.test(def.key)) throw new Error(`invalid parameter name "${def.key}"`)
    this.defs.set(def.key, { owner: 'core', ...def })
  }

  /** Every registered key, in registration order (unsorted: cheap). */
  keys(): IterableIterator<string> {
    return this.defs.keys()
  }

  isRegistered(key: string): boolean {
    return this.defs.has(key)
  }

  /** The effective value: the highest-precedence setting, else the registered default. */
  get(key: string): string | undefined {
    return this.settings.get(key)?.value ?? this.defs.get(key)?.default
  }

  /** Value with its source; undefined when the key is neither registered nor set anywhere. */
  value(key: string): ParamValue | undefined {
    const def = this.defs.get(key)
    const set = this.settings.get(key)
    if (set) return { def: def ?? { key, description: '' }, value: set.value, source: set.source, origin: set.origin }
    if (def) return { def, value: def.default, source: 'default' }
    return undefined
  }

  /** Every registered parameter: core first, then by owner and key. */
  list(): ParamValue[] {
    const rank = (d: ParamDef) => (d.owner === 'core' ? '' : (d.owner ?? '~'))
    return [...this.defs.values()]
      .sort((a, b) => rank(a).localeCompare(rank(b)) || a.key.localeCompare(b.key))
      .map((d) => this.value(d.key)!)
  }

  /** A number, or `fallback` when unset or empty; a non-number is a user error naming its source. */
  getNumber(key: string): number | undefined
  getNumber(key: string, fallback: number): number
  getNumber(key: string, fallback?: number): number | undefined {
    const v = this.get(key)?.trim()
    if (v === undefined || v === '') return fallback
    const n = Number(v)
    const def = this.defs.get(key) ?? { key, description: '' }
    if (!Number.isFinite(n) || !numberFits(def, n)) throw this.badValue(key, v, describeNumber(def))
    return n
  }

  /** 1/true/yes/on are true; 0/false/no/off/empty/unset are false; anything else is a user error. */
  getBool(key: string): boolean {
    const v = this.get(key)?.trim() ?? ''
    const b = parseBool(v)
    if (b === undefined) throw this.badValue(key, v, 'a boolean (1/0, true/false, yes/no, on/off)')
    return b
  }

  /** Check a registered parameter's value against its definition; a misfit is a user error. */
  check(key: string): void {
    const def = this.defs.get(key)
    const v = this.get(key)
    const problem = def && paramProblem(def, v)
    if (problem) throw this.badValue(key, (v ?? '').trim(), problem)
  }

  /** Keys the user set that nothing registered: typos, or plugins that are not loaded. */
  unknownKeys(): string[] {
    return [...this.settings.keys()].filter((k) => !this.defs.has(k)).sort()
  }

  /** Where a user setting came from, for messages ("--mca x", "OMPX_MCA_x", "file:line"). */
  whereSet(key: string): string | undefined {
    return this.settings.get(key)?.where
  }

  /** Every user setting as OMPX_MCA_<key> variables, so child roles see the same parameters. */
  toEnv(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [key, s] of this.settings) out[ENV_PREFIX + key] = s.value
    return out
  }

  private badValue(key: string, v: string, what: string): ActionableError {
    const where = this.settings.get(key)?.where ?? 'default'
    return new ActionableError(`parameter ${key} must be ${what}, got "${v}" (from ${where})`)
  }
}
