/**
 * Reading global.json: parse and check the shape before anyone restarts from it. A damaged file
 * gives one error naming the file; a half-written temp file next to it is never looked at.
 */
import { readFileSync } from 'node:fs'
import { ActionableError, errorMessage } from '../errors'
import { parseSum } from './checksum'
import { META_VERSION, type GlobalMeta, type SeqMeta } from './types'

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isStr = (v: unknown): v is string => typeof v === 'string'

/** Why `r` is not a usable rank entry, or null. */
function checkRank(r: unknown, at: string): string | null {
  if (!isObj(r)) return `${at} is not an object`
  if (!isNum(r.rank) || !isStr(r.node) || !isStr(r.crs) || !isNum(r.bytes)) return `${at} lacks rank, node, crs or bytes`
  if (!Array.isArray(r.files)) return `${at}.files is not a list`
  for (const [i, f] of (r.files as unknown[]).entries()) {
    if (!isObj(f) || !isStr(f.path) || !isNum(f.size) || !isStr(f.sum) || !parseSum(f.sum)) {
      return `${at}.files[${i}] needs path, size and a crc32:/sha256: sum`
    }
  }
  return null
}

function checkSeq(s: unknown, at: string): string | null {
  if (!isObj(s)) return `${at} is not an object`
  if (!Number.isInteger(s.seq) || s.seq < 0) return `${at}.seq is not a sequence number`
  if (!isNum(s.started) || !isNum(s.finished) || !isStr(s.crs)) return `${at} lacks started, finished or crs`
  if (!Array.isArray(s.ranks) || !Array.isArray(s.procs)) return `${at} lacks ranks or procs`
  for (const [i, r] of (s.ranks as unknown[]).entries()) {
    const bad = checkRank(r, `${at}.ranks[${i}]`)
    if (bad) return bad
  }
  return null
}

/** Why `m` is not a global.json we can use, or null. */
export function checkGlobalMeta(m: unknown): string | null {
  if (!isObj(m)) return 'it is not a JSON object'
  if (m.version !== META_VERSION) return `version ${JSON.stringify(m.version)} is not ${META_VERSION} (written by another ompx?)`
  if (!isStr(m.ref) || !isStr(m.jobid) || !isNum(m.created)) return 'ref, jobid or created is missing'
  if (!Array.isArray(m.apps) || !Array.isArray(m.nodes) || !isObj(m.params)) return 'apps, nodes or params is missing'
  if (!Array.isArray(m.seqs)) return 'seqs is not a list'
  const seen = new Set<number>()
  for (const [i, s] of (m.seqs as unknown[]).entries()) {
    const bad = checkSeq(s, `seqs[${i}]`)
    if (bad) return bad
    const n = (s as SeqMeta).seq
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

