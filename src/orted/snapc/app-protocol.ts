/**
 * Parsing of the lines a rank sends to its daemon (docs/app-protocol.md). Pure functions, so the
 * AppServer only routes and the grammar can be tested line by line.
 */
import { MAX_VALUE, badKey, fromB64, parseId, splitFields } from '../../app/lines'
import { decodePreferences, preferenceBytes } from '../../app/migrate'
import type { MessageOf } from '../../wire/messages'

export { decodePreferences, MAX_MIGRATE_BYTES } from '../../app/migrate'

export interface AppRequest {
  id: number
  op: 'init' | 'fin' | 'put' | 'get' | 'barrier' | 'checkpoint' | 'migrate'
  /** PUT/GET: the key; BARRIER: the barrier's name. */
  key?: string
  /** PUT: the value; MIGRATE: the preference entries' JSON. */
  value?: Uint8Array
  /** REQUEST CHECKPOINT term. */
  term?: boolean
}

export interface Hello {
  version: number
  rank: number
  token: string
  pid: number
}

export type RankLine =
  | { kind: 'request'; req: AppRequest }
  | { kind: 'prep'; status: 'ok' | 'stall' | 'null' | 'error'; message?: string }
  | { kind: 'done'; ok: boolean; message?: string }
  /** A request we can name by its id but not serve: answered `ERR <id> <message>`. */
  | { kind: 'error'; id: number; message: string }
  /** Not the protocol: the connection is closed. */
  | { kind: 'bad'; message: string }

/** `HELLO <version> <rank> <token> <pid>`, or null when the line is anything else. */
export function parseHello(line: string): Hello | null {
  const f = line.split(' ')
  if (f.length !== 5 || f[0] !== 'HELLO') return null
  const [version, rank, pid] = [parseId(f[1]), parseId(f[2]), parseId(f[4])]
  if (version === null || rank === null || pid === null || !f[3]) return null
  return { version, rank, token: f[3], pid }
}

const PREP: Record<string, 'ok' | 'stall' | 'null' | 'error'> = { OK: 'ok', STALL: 'stall', NULL: 'null', ERROR: 'error' }

export function parseRankLine(line: string): RankLine {
  const sp = line.indexOf(' ')
  const verb = sp < 0 ? line : line.slice(0, sp)
  if (verb === 'HELLO') return { kind: 'bad', message: 'a second HELLO' }
  if (verb === 'PREP' || verb === 'DONE') {
    const [, status = '', message] = splitFields(line, 3)
    if (verb === 'DONE' && (status === 'OK' || status === 'ERROR')) return { kind: 'done', ok: status === 'OK', message }
    if (verb === 'PREP' && status in PREP) return { kind: 'prep', status: PREP[status]!, message }
    return { kind: 'bad', message: `malformed ${verb} line` }
  }
  const f = line.split(' ')
  const id = parseId(f[1])
  if (id === null) return { kind: 'bad', message: `not a request of the protocol: ${line.slice(0, 60)}` }
  const err = (message: string): RankLine => ({ kind: 'error', id, message })
  const req = (r: Omit<AppRequest, 'id'>): RankLine => ({ kind: 'request', req: { id, ...r } })
  const arity = (n: number) => f.length === n
  switch (f[0]) {
    case 'INIT':
    case 'FIN':
      return arity(2) ? req({ op: f[0] === 'INIT' ? 'init' : 'fin' }) : err(`${f[0]} takes no arguments`)
    case 'GET':
    case 'BARRIER': {
      if (!arity(3)) return err(`usage: ${f[0]} <id> ${f[0] === 'GET' ? '<key>' : '<name>'}`)
      const bad = badKey(f[2]!)
      return bad ? err(bad) : req({ op: f[0] === 'GET' ? 'get' : 'barrier', key: f[2] })
    }
    case 'PUT': {
      // An empty value is "PUT <id> <key> " (empty base64); accept the trailing space being lost.
      if (f.length !== 4 && f.length !== 3) return err('usage: PUT <id> <key> <base64>')
      const bad = badKey(f[2]!)
      if (bad) return err(bad)
      const value = fromB64(f[3] ?? '')
      if (!value) return err('the value is not valid base64')
      if (value.length > MAX_VALUE) return err(`the value is larger than ${MAX_VALUE} bytes`)
      return req({ op: 'put', key: f[2], value })
    }
    case 'REQUEST':
      if (f[2] === 'MIGRATE') return migrate(f, err, req)
      if (f[2] !== 'CHECKPOINT' || f.length > 4 || (f.length === 4 && f[3] !== 'term')) {
        return err('usage: REQUEST <id> CHECKPOINT [term] | REQUEST <id> MIGRATE <base64 json>')
      }
      return req({ op: 'checkpoint', term: f[3] === 'term' })
    default:
      return err('unknown request')
  }
}

/** `REQUEST <id> MIGRATE <b64>`: the entries' shape is checked here (ranks against the job's size at the HNP). */
function migrate(f: string[], err: (m: string) => RankLine, req: (r: Omit<AppRequest, 'id'>) => RankLine): RankLine {
  if (f.length !== 4) return err('usage: REQUEST <id> MIGRATE <base64 json>')
  const value = preferenceBytes(f[3]!)
  if (typeof value === 'string') return err(value)
  const prefs = decodePreferences(value)
  return typeof prefs === 'string' ? err(prefs) : req({ op: 'migrate', value })
}

/**
 * The `orted.app` op that carries MIGRATE to the HNP, until the message catalog's op list has
 * 'migrate': op 'checkpoint' with this key and the entries' JSON as value (AppServices knows both).
 */

/** A rank's request as the fields of `orted.app`. */
export function wireRequest(r: AppRequest): Pick<MessageOf<'orted.app'>, 'op' | 'key' | 'value' | 'term'> {
  if (r.op === 'migrate') return { op: 'migrate', value: r.value }
  return { op: r.op, key: r.key, value: r.value, term: r.term }
}
