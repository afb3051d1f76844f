/**
 * Reading global.json: parse and check it against the metadata schema before anyone restarts
 * from it. Nothing in it is trusted further than this check: every file path must stay inside
 * its rank dir (relative, no `..`, no empty segment, no NUL), every seq must list every rank of
 * the job exactly once (ranks 0..np-1 from the apps) with procs that agree, and the kv file is
 * `kv.json` of the seq dir. A damaged file gives one error naming the file, the seq, the rank
 * and the offending entry; a half-written temp file next to it is never looked at.
 */
import { readFileSync } from 'node:fs'
import { ActionableError, errorMessage } from '../errors'
import { parseSum } from './checksum'
import { badRelPath } from './chunk-codec'
import { KV_FILE, META_VERSION, RANK_META, type GlobalMeta } from './types'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isStr = (v: unknown): v is string => typeof v === 'string'
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0
/** A value quoted for a message: never long, never a second line. */
const q = (v: unknown) => JSON.stringify(typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}...` : v) ?? String(v)

/** Why `f` is not a usable file entry (a size and sum for a path inside the dir), or null. */
function checkFile(f: unknown, i: number): string | null {
  if (!isObj(f)) return `files[${i}] is not an object`
  if (!isStr(f.path)) return `files[${i}] has no path`
  const bad = badRelPath(f.path)
  if (bad) return `file path ${q(f.path)} ${bad}: it must stay inside the rank dir`
  if (f.path === RANK_META) return `file path ${q(f.path)} is the rank's own metadata`
  if (!isCount(f.size)) return `file ${q(f.path)} has no valid size`
  if (!isStr(f.sum) || !parseSum(f.sum)) return `file ${q(f.path)} needs a crc32:/sha256: sum`
  return null
}

/** Why `r` is not a usable rank entry, or null. */
function checkRank(r: Obj): string | null {
  if (!isStr(r.node) || !isStr(r.crs) || !isNum(r.bytes)) return 'lacks node, crs or bytes'
  if (!Array.isArray(r.files)) return 'files is not a list'
  const paths = new Set<string>()
  for (const [i, f] of (r.files as unknown[]).entries()) {
    const bad = checkFile(f, i)
    if (bad) return bad
    const p = (f as { path: string }).path
    if (paths.has(p)) return `file ${q(p)} is listed twice`
    paths.add(p)
  }
  for (const p of paths) {
    // A file and a directory of the same name cannot both exist.
    for (let cut = p.indexOf('/'); cut > 0; cut = p.indexOf('/', cut + 1)) {
      if (paths.has(p.slice(0, cut))) return `file ${q(p.slice(0, cut))} is also a directory of ${q(p)}`
    }
  }
  return null
}

/** Why the seq's ranks and procs do not cover the job's ranks 0..np-1 exactly once, or null. */
function checkCoverage(s: Obj, apps: { np: number }[]): string | null {
  const total = apps.reduce((n, a) => n + a.np, 0)
  const ranks = s.ranks as unknown[]
  const seen = new Set<number>()
  for (const r of ranks) {
    if (!isObj(r) || !isCount(r.rank)) return `ranks has an entry without a rank number: ${q(r).slice(0, 120)}`
    if (r.rank >= total) return `rank ${r.rank} is not a rank of the job (np ${total})`
    if (seen.has(r.rank)) return `rank ${r.rank} is listed twice`
    seen.add(r.rank)
    const bad = checkRank(r)
    if (bad) return `rank ${r.rank}: ${bad}`
  }
  for (let r = 0; r < total; r++) if (!seen.has(r)) return `rank ${r} of the job (np ${total}) is missing from ranks`
  const procs = s.procs as unknown[]
  const perApp = apps.map(() => 0)
  const placed = new Set<number>()
  for (const p of procs) {
    if (!isObj(p) || !isCount(p.rank) || !isCount(p.app) || !isStr(p.node)) return `procs has an entry without rank, app and node: ${q(p).slice(0, 120)}`
    if (p.rank >= total || placed.has(p.rank)) return `procs: rank ${p.rank} is ${p.rank >= total ? 'not a rank of the job' : 'listed twice'}`
    if (p.app >= apps.length) return `procs: rank ${p.rank} is in app ${p.app}, but there are ${apps.length} apps`
    placed.add(p.rank)
    perApp[p.app]!++
  }
  if (placed.size !== total) return `procs lists ${placed.size} ranks, the job has ${total}`
  const wrong = apps.findIndex((a, i) => perApp[i] !== a.np)
  if (wrong >= 0) return `procs puts ${perApp[wrong]} ranks in app ${wrong}, its np is ${apps[wrong]!.np}`
  return null
}

function checkSeq(s: unknown, apps: { np: number }[]): string | null {
  if (!isObj(s)) return 'is not an object'
  if (!isNum(s.started) || !isNum(s.finished) || !isStr(s.crs)) return 'lacks started, finished or crs'
  if (!Array.isArray(s.ranks) || !Array.isArray(s.procs)) return 'lacks ranks or procs'
  const bad = checkCoverage(s, apps)
  if (bad) return bad
  if (s.kv !== undefined && (!isObj(s.kv) || !Object.values(s.kv).every(isStr))) return 'kv is not a map of base64 strings'
  if (s.kvFile !== undefined) {
    const f = s.kvFile
    if (!isObj(f) || f.path !== KV_FILE || !isCount(f.size) || !isStr(f.sum) || !parseSum(f.sum)) {
      return `kvFile must be {"path": "${KV_FILE}", size, sum}, got ${q(f).slice(0, 200)}`
    }
  }
  return null
}

function checkApps(apps: unknown[]): string | null {
  for (const [i, a] of apps.entries()) {
    if (!isObj(a) || a.index !== i || !isCount(a.np) || a.np === 0) return `apps[${i}] needs index ${i} and np >= 1`
    if (!Array.isArray(a.argv) || !a.argv.every(isStr) || !isObj(a.env) || !isStr(a.cwd)) return `apps[${i}] needs argv, env and cwd`
  }
  return apps.length === 0 ? 'apps is empty' : null
}

/** Why `m` is not a global.json we can use, or null. */
export function checkGlobalMeta(m: unknown): string | null {
  if (!isObj(m)) return 'it is not a JSON object'
  if (m.version !== META_VERSION) return `version ${q(m.version)} is not ${META_VERSION} (written by another ompx?)`
  if (!isStr(m.ref) || !isStr(m.jobid) || !isNum(m.created)) return 'ref, jobid or created is missing'
  if (!Array.isArray(m.apps) || !Array.isArray(m.nodes) || !isObj(m.params)) return 'apps, nodes or params is missing'
  const badApps = checkApps(m.apps)
  if (badApps) return badApps
  if (!Array.isArray(m.seqs)) return 'seqs is not a list'
  const seen = new Set<number>()
  for (const [i, s] of (m.seqs as unknown[]).entries()) {
    const n = isObj(s) ? s.seq : undefined
    if (!isCount(n)) return `seqs[${i}].seq is not a sequence number`
    const bad = checkSeq(s, m.apps as { np: number }[])
    if (bad) return `seq ${n}: ${bad}`
    if (seen.has(n)) return `seq ${n} is listed twice`
    seen.add(n)
  }
  return null
}

/** Parse and check `path`; null when it does not exist (nothing committed yet). */
export function readGlobalMeta(path: string): GlobalMeta | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new ActionableError(`cannot read ${path}: ${errorMessage(err)}`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ActionableError(`${path} is not valid JSON: the snapshot metadata is damaged`)
  }
  const bad = checkGlobalMeta(value)
  if (bad) throw new ActionableError(`${path} is not valid snapshot metadata: ${bad}`)
  return value as GlobalMeta
}
