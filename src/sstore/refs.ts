/**
 * Naming and finding global snapshots. A job's snapshots live in
 * `<global dir>/ompx_global_snapshot_<jobid>.ckpt/`; users may name one by that bare ref, by the
 * path of the .ckpt directory, or by the path of its global.json.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { ActionableError, errorMessage } from '../errors'
import { PRIVATE_DIR_MODE } from './durable'
import { GLOBAL_META } from './types'

const REF_PREFIX = 'ompx_global_snapshot_'
const REF_SUFFIX = '.ckpt'
const REF_RE = /^ompx_global_snapshot_[A-Za-z0-9_.-]+\.ckpt$/

/** The ref of a job's global snapshot. */
export function snapshotRef(jobid: string): string {
  const ref = `${REF_PREFIX}${jobid}${REF_SUFFIX}`
  if (!REF_RE.test(ref) || jobid.includes('..')) throw new Error(`job id "${jobid}" cannot name a snapshot`)
  return ref
}

export function isSnapshotRef(name: string): boolean {
  return REF_RE.test(name) && !name.includes('..')
}

/** The job id inside a ref ("ompx_global_snapshot_123.1.ckpt" -> "123.1"). */
export function jobidOfRef(ref: string): string {
  return ref.slice(REF_PREFIX.length, -REF_SUFFIX.length)
}

/** Refs in `globalDir` that have a committed global.json, sorted. */
export function committedRefs(globalDir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(globalDir)
  } catch {
    return []
  }
  return names.filter((n) => isSnapshotRef(n) && existsSync(join(globalDir, n, GLOBAL_META))).sort()
}

/**
 * Find a global snapshot from what the user typed: a bare ref (looked up in `globalDir`), a
 * path to a .ckpt directory, or a path to its global.json. Returns the ref and its directory.
 */
export function resolveSnapshot(refOrPath: string, globalDir: string): { ref: string; dir: string } {
  const given = refOrPath.trim().replace(/\/+$/, '')
  const candidates: string[] = []
  if (isSnapshotRef(given)) candidates.push(join(globalDir, given))
  if (given.includes('/') || !isSnapshotRef(given) || existsSync(given)) {
    const p = resolve(given)
    candidates.push(basename(p) === GLOBAL_META ? dirname(p) : p)
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, GLOBAL_META))) return { ref: basename(dir), dir }
  }
  const refs = committedRefs(globalDir)
  const there = refs.length === 0 ? 'it has none' : refs.length <= 5 ? `available: ${refs.join(', ')}` : `${refs.length} snapshots there`
  return fail(`no snapshot ${given} in ${globalDir} (${there})`)
}

function fail(msg: string): never {
  throw new ActionableError(msg)
}

/** What globalSnapshotDir needs from Params (kept narrow so tools and tests can pass a stub). */
export interface ParamSource {
  get(key: string): string | undefined
  readonly home?: string
  readonly cwd?: string
}

/**
 * The HNP's global snapshot directory: sstore_base_global_snapshot_dir, or ~/.ompx/snapshots when
 * empty; `~/` is expanded and a relative path is taken from the current directory. Created 0700.
 */
export function globalSnapshotDir(params: ParamSource): string {
  const home = params.home ?? homedir()
  const raw = (params.get('sstore_base_global_snapshot_dir') ?? '').trim()
  let dir = raw === '' ? join(home, '.ompx', 'snapshots') : raw
  if (dir === '~' || dir.startsWith('~/')) dir = join(home, dir.slice(1))
  dir = resolve(params.cwd ?? process.cwd(), dir)
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
  } catch (err) {
    throw new ActionableError(`cannot use ${dir} for snapshots (${errorMessage(err)}); set sstore_base_global_snapshot_dir to a writable directory`)
  }
  return dir
}
