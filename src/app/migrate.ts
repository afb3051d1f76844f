/**
 * The app's migration request (docs/app-protocol.md, `REQUEST <id> MIGRATE <b64>`): the
 * preference entries of requestMigrate(), their shape check (shared by the SDK, the daemon and
 * the HNP, so each refuses the same things with the same words), their encoding on the line, and
 * the outcome the runtime answers. Only the shape is checked here: entries that contradict each
 * other (the seed's preference table) are the planner's to refuse, with its own reason.
 */
import { fromB64, toB64 } from './lines'

/** One entry of requestMigrate(): a rank (this one or a peer) and at most where it should go. */
export interface MigratePreference {
  rank: number
  /** The node to move to. */
  onto?: string
  /** Move next to this rank (onto its node). */
  nearRank?: number
  /** Move off the rank's current node (anywhere else). */
  offNode?: boolean
}

/** One rank that moved. */
export interface MigratedRank {
  rank: number
  from: string
  to: string
  oldPid: number
  newPid: number
  bytes: number
  downtimeMs: number
}

/** What requestMigrate() resolves with once every mover runs on its new node. */
export interface MigrateOutcome {
  moves: MigratedRank[]
  /** Bytes of the images that travelled, and the time from the request to the end. */
  bytes: number
  totalMs: number
  /** The runtime's answer as it came (JSON), for logging. */
  text: string
}

/** Most entries one request may hold, and most bytes of their JSON. */
export const MAX_MIGRATE_ENTRIES = 4096
export const MAX_MIGRATE_BYTES = 64 * 1024
/** Longest node name (bytes). */
const MAX_NODE = 255
const FIELDS = new Set(['rank', 'onto', 'nearRank', 'offNode'])
const enc = new TextEncoder()

const isRank = (v: unknown, size?: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && (size === undefined || v < size)
const ranks = (size?: number) => (size === undefined ? 'a non-negative integer' : `an integer from 0 to ${size - 1}`)
const shown = (v: unknown) => (typeof v === 'string' ? `"${v.slice(0, 40)}"` : String(JSON.stringify(v) ?? v).slice(0, 40))

/** Why `prefs` is not a list of preference entries (ranks checked against `size` when known), or null. */
export function badPreferences(prefs: unknown, size?: number): string | null {
  if (!Array.isArray(prefs)) return 'the preferences must be an array of { rank, onto?, nearRank?, offNode? }'
  if (prefs.length === 0) return 'nothing to migrate: the preference list is empty'
  if (prefs.length > MAX_MIGRATE_ENTRIES) return `${prefs.length} preference entries, more than ${MAX_MIGRATE_ENTRIES}`
  for (const [i, e] of prefs.entries()) {
    const why = badEntry(e, size)
    if (why) return `entry ${i}: ${why}`
  }
  return null
}

function badEntry(e: unknown, size?: number): string | null {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'not an object { rank, onto?, nearRank?, offNode? }'
  const o = e as Record<string, unknown>
  const unknown = Object.keys(o).find((k) => !FIELDS.has(k))
  if (unknown !== undefined) return `unknown field "${unknown.slice(0, 40)}" (known: rank, onto, nearRank, offNode)`
  if (!isRank(o.rank, size)) return `rank must be ${ranks(size)}, not ${shown(o.rank)}`
  if (o.onto !== undefined) {
    if (typeof o.onto !== 'string' || o.onto.length === 0) return `onto must be a node name, not ${shown(o.onto)}`
    if (/\s/.test(o.onto)) return `onto "${o.onto.slice(0, 40)}" contains white space`
    if (enc.encode(o.onto).length > MAX_NODE) return `onto is longer than ${MAX_NODE} bytes`
  }
  if (o.nearRank !== undefined && !isRank(o.nearRank, size)) return `nearRank must be ${ranks(size)}, not ${shown(o.nearRank)}`
  if (o.offNode !== undefined && typeof o.offNode !== 'boolean') return `offNode must be true or false, not ${shown(o.offNode)}`
  return null
}

/** The entries with their known fields only (absent ones left out), in a fixed order. */
export function normalPreferences(prefs: readonly MigratePreference[]): MigratePreference[] {
  return prefs.map((p) => ({
    rank: p.rank,
    ...(p.onto !== undefined && { onto: p.onto }),
    ...(p.nearRank !== undefined && { nearRank: p.nearRank }),
    ...(p.offNode !== undefined && { offNode: p.offNode }),
  }))
}

/** The `<b64>` field of `REQUEST <id> MIGRATE`: the entries' JSON, base64. */
export function encodePreferences(prefs: readonly MigratePreference[]): string {
  return toB64(enc.encode(JSON.stringify(normalPreferences(prefs))))
}

/** The entries from the JSON bytes of a request, or why they are not acceptable. */
export function decodePreferences(bytes: Uint8Array | undefined, size?: number): MigratePreference[] | string {
  if (!bytes || bytes.length === 0) return 'MIGRATE needs the preference entries'
  if (bytes.length > MAX_MIGRATE_BYTES) return `the preferences are ${bytes.length} bytes, more than ${MAX_MIGRATE_BYTES}`
  let prefs: unknown
  try {
    prefs = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return 'the preferences are not JSON'
  }
  const bad = badPreferences(prefs, size)
  return bad ?? normalPreferences(prefs as MigratePreference[])
}

/** The base64 field of a MIGRATE line decoded: the JSON bytes, or why not. */
export function preferenceBytes(field: string): Uint8Array | string {
  if (field.length > Math.ceil(MAX_MIGRATE_BYTES / 3) * 4) return `the preferences are more than ${MAX_MIGRATE_BYTES} bytes`
  return fromB64(field) ?? 'the preferences are not valid base64'
}

/** requestMigrate()'s result from the `OK <id> <text>` answer (JSON of the migration's result). */
export function parseOutcome(text: string): MigrateOutcome {
  let o: Record<string, unknown> = {}
  try {
    const v: unknown = JSON.parse(text)
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) o = v as Record<string, unknown>
  } catch {
    // Not JSON: an older or plainer runtime; the text is still there.
  }
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
  const moves = (Array.isArray(o.moves) ? o.moves : [])
    .filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null && isRank(m.rank))
    .map((m) => ({
      rank: m.rank as number,
      from: String(m.from ?? ''),
      to: String(m.to ?? ''),
      oldPid: num(m.oldPid),
      newPid: num(m.newPid),
      bytes: num(m.bytes),
      downtimeMs: num(m.downtimeMs),
    }))
  return { moves, bytes: num(o.bytes), totalMs: num(o.totalMs), text }
}
