/**
 * Checkpoint/restart options of `ompx run` and `ompx restart`, turned into settings: periodic
 * interval, retention, recovery. Durations accept 30, 30s, 5m, 1h, 1h30m.
 */
import { ActionableError } from '../errors'
import { MAX_COUNT, MAX_SECONDS } from '../params/limits'
import type { RunOptionValues } from './run-options'

/** The options crSettings reads; `mca` receives --keep as a parameter. */
export type CrOptionValues = Pick<RunOptionValues, 'ckpt-interval' | 'keep' | 'enable-recovery' | 'max-restarts' | 'recovery-delay' | 'mca'>

export interface CrSettings {
  intervalSec?: number
  recovery?: { maxRestarts: number; delaySec: number }
}

const UNIT: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }

export function parseDuration(value: string, flag: string): number {
  const v = value.trim()
  let total = 0
  let rest = v
  const part = /^(\d+(?:\.\d+)?)([smhd]?)/
  if (!v) throw new ActionableError(`${flag} needs a duration such as 30s, 5m or 1h`)
  while (rest) {
    const m = part.exec(rest)
    if (!m) throw new ActionableError(`${flag}: "${value}" is not a duration (use e.g. 30s, 5m, 1h30m)`)
    total += Number(m[1]) * UNIT[m[2]!]!
    rest = rest.slice(m[0].length)
  }
  if (total <= 0) throw new ActionableError(`${flag} must be more than zero, got "${value}"`)
  if (!(total <= MAX_SECONDS)) throw new ActionableError(`${flag} may be at most ${MAX_SECONDS} seconds (23 days), got "${value}"`)
  return total
}

function count(value: string, flag: string, min: number): number {
  const n = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < min || n > MAX_COUNT) {
    throw new ActionableError(`${flag} takes a whole number from ${min} to ${MAX_COUNT}, got "${value}"`)
  }
  return n
}

/** Read the C/R flags; --keep becomes the sstore_base_keep parameter so params files may set it too. */
export function crSettings(opts: CrOptionValues): CrSettings {
  const out: CrSettings = {}
  if (opts['ckpt-interval'] !== undefined) out.intervalSec = parseDuration(opts['ckpt-interval'], '--ckpt-interval')
  if (opts.keep !== undefined) (opts.mca ??= []).push(['sstore_base_keep', String(count(opts.keep, '--keep', 1))])
  const wantsRecovery = Boolean(opts['enable-recovery'])
  if (!wantsRecovery && (opts['max-restarts'] !== undefined || opts['recovery-delay'] !== undefined)) {
    throw new ActionableError('--max-restarts and --recovery-delay need --enable-recovery')
  }
  if (wantsRecovery) {
    const delay = opts['recovery-delay'] === undefined ? 1 : parseDuration(opts['recovery-delay'], '--recovery-delay')
    out.recovery = { maxRestarts: opts['max-restarts'] === undefined ? 3 : count(opts['max-restarts'], '--max-restarts', 0), delaySec: delay }
  }
  return out
}
