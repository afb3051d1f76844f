/**
 * Turns `ompx run` argv into a RunRequest: job-wide options, then one or more app contexts
 * separated by a lone ":" (MPMD), each `[per-app options] [--] program args...`.
 */
import { resolve } from 'node:path'
import { ActionableError } from '../errors'
import { MAX_RANKS, MAX_SECONDS } from '../params/limits'
import type { AppContext } from '../runtime/job'
import { scanOptions, type Scanned } from './scan'
import { perAppOptions, runOptions, type PerAppOptionValues, type RunOptionValues } from './run-options'

export interface RunRequest {
  /** Scan of the first segment: job-wide options (and app 0's per-app options). */
  job: Scanned<RunOptionValues>
  apps: AppContext[]
  stdin: { kind: 'rank'; rank: number } | { kind: 'all' } | { kind: 'none' }
  timeoutSec?: number
}

const COMMAND = 'ompx run'

export function splitMpmd(argv: string[]): string[][] {
  const segments: string[][] = [[]]
  for (const a of argv) {
    if (a === ':') segments.push([])
    else segments[segments.length - 1]!.push(a)
  }
  return segments
}

export function parseRunArgs(argv: string[], env: Record<string, string | undefined> = process.env): RunRequest {
  const [first = [], ...more] = splitMpmd(argv)
  const how = { command: COMMAND, stopAtPositional: true }
  // The first segment takes every option; the next app contexts only the per-app ones.
  const job = scanOptions(first, runOptions, how)
  const apps: AppContext[] = []
  if (!job.help) apps.push(toApp(job, 0, env))
  more.forEach((segment, i) => {
    const scanned = scanOptions(segment, perAppOptions, how)
    if (scanned.help) job.help = true
    else apps.push(toApp(scanned, i + 1, env))
  })
  if (job.help) return { job, apps: [], stdin: { kind: 'none' } }
  return { job, apps, stdin: parseStdin(job.opts.stdin), timeoutSec: parseTimeout(job.opts.timeout) }
}

function toApp(s: Scanned<PerAppOptionValues>, index: number, env: Record<string, string | undefined>): AppContext {
  const where = index === 0 ? '' : ` (app context ${index + 1})`
  if (s.rest.length === 0) {
    throw new ActionableError(`no program given${where}; usage: ompx run [options] [--] <program> [args...]`)
  }
  return {
    index,
    np: s.opts.np === undefined ? undefined : parseCount(s.opts.np, where),
    argv: s.rest,
    env: parseExports(s.opts.x ?? [], env),
    cwd: resolve(s.opts.wdir ?? process.cwd()),
  }
}

function parseCount(value: string, where: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new ActionableError(`-np needs a positive whole number of ranks, got "${value}"${where}`)
  }
  if (Number(value) > MAX_RANKS) throw new ActionableError(`-np ${value} is too many ranks${where}; a job may have at most ${MAX_RANKS}`)
  return Number(value)
}

/** `-x FOO=bar` sets FOO; `-x FOO` exports our own FOO (an error if we have none, as mpirun). */
export function parseExports(list: string[], env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of list) {
    const eq = item.indexOf('=')
    const name = eq < 0 ? item : item.slice(0, eq)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ActionableError(`-x needs VAR or VAR=value, got "${item}"`)
    if (eq >= 0) out[name] = item.slice(eq + 1)
    else if (env[name] !== undefined) out[name] = env[name]!
    else throw new ActionableError(`-x ${name}: ${name} is not set in this environment; use -x ${name}=value`)
  }
  return out
}

export function parseStdin(value: string | undefined): RunRequest['stdin'] {
  if (value === undefined || value === 'rank') return { kind: 'rank', rank: 0 }
  if (value === 'all' || value === 'none') return { kind: value }
  if (/^\d+$/.test(value) && Number(value) < MAX_RANKS) return { kind: 'rank', rank: Number(value) }
  throw new ActionableError(`--stdin takes a rank number, "all" or "none", got "${value}"`)
}

export function parseTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || n > MAX_SECONDS) {
    throw new ActionableError(`--timeout takes a positive number of seconds up to ${MAX_SECONDS}, got "${value}"`)
  }
  return n
}
