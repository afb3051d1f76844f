/**
 * Bounds every size and duration obeys, and the check of one parameter value against its
 * definition (type, range, allowed values). Sizes are capped so nothing a user types can make
 * ompx allocate without limit; durations so a timer never overflows (setTimeout takes at most
 * 2^31-1 ms, about 24.8 days, and fires at once beyond it).
 */
import type { ParamDef } from './types'

/** Slots of one host (-H host:N, hostfile slots= and max_slots=). */
export const MAX_SLOTS = 1 << 20
/** Ranks of one job, over all its app contexts (-np, or the slots when -np is not given). */
export const MAX_RANKS = 1 << 20
/** Any duration in seconds (--timeout, --ckpt-interval, timeouts of parameters): 23 days. */
export const MAX_SECONDS = 2_000_000
/** Counts such as --keep and --max-restarts. */
export const MAX_COUNT = 1_000_000

const TRUE = /^(1|true|yes|on)$/i
const FALSE = /^(0|false|no|off)?$/i

/** A boolean parameter value, or undefined when it is not one. */
export function parseBool(v: string): boolean | undefined {
  if (TRUE.test(v)) return true
  if (FALSE.test(v)) return false
  return undefined
}

/** "a whole number from 1 to 22", "a number more than 0 and at most 2000000", ... */
export function describeNumber(def: Pick<ParamDef, 'integer' | 'min' | 'max' | 'above'>): string {
  const kind = def.integer ? 'a whole number' : 'a number'
  const { min, max, above } = def
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`
  if (above !== undefined && max !== undefined) return `${kind} more than ${above} and at most ${max}`
  if (min !== undefined) return `${kind} of at least ${min}`
  if (above !== undefined) return `${kind} more than ${above}`
  if (max !== undefined) return `${kind} of at most ${max}`
  return kind
}

/** Whether a finite number obeys the definition's integer and range rules. */
export function numberFits(def: ParamDef, n: number): boolean {
  if (def.integer && !Number.isInteger(n)) return false
  if (def.min !== undefined && n < def.min) return false
  if (def.above !== undefined && n <= def.above) return false
  return def.max === undefined || n <= def.max
}

/**
 * What a value must be when it does not fit its definition ("one of crc32, sha256"), else
 * undefined. Empty means "the default" for every type, as the getters read it.
 */
export function paramProblem(def: ParamDef, raw: string | undefined): string | undefined {
  const v = (raw ?? '').trim()
  if (v === '') return undefined
  if (def.type === 'bool') return parseBool(v) === undefined ? 'a boolean (1/0, true/false, yes/no, on/off)' : undefined
  if (def.type === 'number') {
    const n = Number(v)
    return Number.isFinite(n) && numberFits(def, n) ? undefined : describeNumber(def)
  }
  if (def.values && !def.values.includes(v)) return `one of ${def.values.join(', ')}`
  return def.check?.(v)
}
