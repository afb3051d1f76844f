/**
 * Open MPI hostfiles: one host per line, `name [slots=N] [max_slots=M]`, `#` comments.
 * ompx adds `launcher=NAME` and `address=IP` so a hostfile can describe simulated nodes
 * (several "nodes" on this machine, each on its own loopback address).
 *
 * MPICH's `host:N` machinefile form is read as `host slots=N`.
 *
 * Two views are kept: the raw lines (the `seq` mapper wants one rank per line, duplicates
 * included) and the merged hosts (duplicate lines add their slots up, as Open MPI does).
 */
import { ActionableError } from '../errors'
import { MAX_SLOTS } from '../params/limits'
import type { NodeInfo } from './job'

/** node:net only for hostfiles that give an address= (loading it costs ~10 ms at start-up). */
function isIpAddress(value: string): boolean {
  return (require('node:net') as typeof import('node:net')).isIP(value) !== 0
}

/** One host line as written. `slots` is undefined when the line names the host only. */
export interface HostfileLine {
  name: string
  /** 1-based line number, for messages. */
  line: number
  slots?: number
  maxSlots?: number
  launcher?: string
  address?: string
}

/** A host after merging its lines; `line` is where it first appeared. */
export interface HostfileEntry extends NodeInfo {
  line: number
}

const KEY_HELP = 'expected slots=N, max_slots=N, launcher=NAME or address=IP'

/** Spellings accepted for each key; `count` and `max-slots` are Open MPI synonyms. */
const KEY_ALIASES: Record<string, 'slots' | 'maxSlots' | 'launcher' | 'address'> = {
  slots: 'slots',
  count: 'slots',
  max_slots: 'maxSlots',
  'max-slots': 'maxSlots',
  launcher: 'launcher',
  address: 'address',
}

function fail(path: string, line: number, what: string): never {
  throw new ActionableError(`${path}:${line}: ${what}`)
}

function positiveInt(raw: string, key: string, path: string, line: number): number {
  if (!/^\d+$/.test(raw)) fail(path, line, `${key}=${raw} is not a number; write ${key}=N with N a whole number of at least 1`)
  const n = Number(raw)
  if (n < 1) fail(path, line, `${key}=${raw} must be at least 1 (leave the host out to give it no ranks)`)
  if (n > MAX_SLOTS) fail(path, line, `${key}=${raw} is too many; a host may have at most ${MAX_SLOTS} slots`)
  return n
}

/** Parse every host line, in order, without merging duplicates. */
export function parseHostfileLines(text: string, path: string): HostfileLine[] {
  const out: HostfileLine[] = []
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = i + 1
    // `slots = 4` is accepted like `slots=4`: join the key, '=' and value before splitting.
    const content = rawLine.replace(/#.*$/, '').replace(/\s*=\s*/g, '=').trim()
    if (content === '') return
    const [first, ...pairs] = content.split(/\s+/) as [string, ...string[]]
    let name = first
    if (name.includes('=')) fail(path, line, `"${name}" is not a host name; a line starts with the host name, then ${KEY_HELP}`)
    const seen = new Set<string>()
    let slots: number | undefined
    // MPICH machinefiles write `host:N`; take it as slots=N rather than as a host named "host:N".
    const mpich = /^([^:]+):([^:]*)$/.exec(first)
    if (mpich) {
      name = mpich[1]!
      slots = positiveInt(mpich[2]!, 'slots', path, line)
      seen.add('slots')
    }
    const entry: HostfileLine = slots === undefined ? { name, line } : { name, line, slots }
    for (const pair of pairs) {
      const eq = pair.indexOf('=')
      const key = eq < 0 ? pair : pair.slice(0, eq)
      const field = KEY_ALIASES[key.toLowerCase()]
      if (!field) fail(path, line, `unknown key "${key}" for host ${name}; ${KEY_HELP}`)
      const value = pair.slice(eq + 1)
      if (eq < 0 || value === '') fail(path, line, `${key} for host ${name} has no value; write ${key}=VALUE`)
      if (seen.has(field)) fail(path, line, `${key} is given twice for host ${name}; keep one`)
      seen.add(field)
      if (field === 'slots' || field === 'maxSlots') entry[field] = positiveInt(value, key, path, line)
      else if (field === 'address' && !isIpAddress(value)) fail(path, line, `address=${value} for host ${name} is not an IP address; write e.g. address=127.0.1.3`)
      else if (field === 'address' || field === 'launcher') entry[field] = value
    }
    if (entry.slots !== undefined && entry.maxSlots !== undefined && entry.maxSlots < entry.slots) {
      fail(path, line, `max_slots=${entry.maxSlots} is less than slots=${entry.slots} for host ${name}; raise max_slots or lower slots`)
    }
    out.push(entry)
  })
  return out
}

/**
 * Merge lines per host, keeping first-appearance order. A host on one line without slots gets
 * `defaultSlots` (slotsGiven false, capped by its max_slots). A host on several lines gets the
 * sum, where a line without slots counts 1 (Open MPI's rule), and counts as given.
 * max_slots: the last line that sets it wins, as in Open MPI.
 */
export function mergeHostfileLines(lines: HostfileLine[], path: string, defaultSlots = 1): HostfileEntry[] {
  const byName = new Map<string, { entry: HostfileEntry; count: number; anySlots: boolean; lastLine: number }>()
  for (const l of lines) {
    let acc = byName.get(l.name)
    if (!acc) {
      acc = { entry: { name: l.name, slots: 0, line: l.line }, count: 0, anySlots: false, lastLine: l.line }
      byName.set(l.name, acc)
    }
    const e = acc.entry
    for (const key of ['address', 'launcher'] as const) {
      const v = l[key]
      if (v === undefined) continue
      if (e[key] !== undefined && e[key] !== v) {
        fail(path, l.line, `host ${l.name} has ${key}=${v} here but ${key}=${e[key]} on an earlier line; give one ${key} per host`)
      }
      e[key] = v
    }
    if (l.maxSlots !== undefined) e.maxSlots = l.maxSlots
    e.slots += l.slots ?? 1
    acc.anySlots ||= l.slots !== undefined
    acc.count++
    acc.lastLine = l.line
  }
  return [...byName.values()].map(({ entry, count, anySlots, lastLine }) => {
    entry.slotsGiven = anySlots || count > 1
    if (!entry.slotsGiven) entry.slots = Math.min(defaultSlots, entry.maxSlots ?? Infinity)
    if (entry.slots > MAX_SLOTS) {
      fail(path, lastLine, `host ${entry.name} has ${entry.slots} slots over all its lines; a host may have at most ${MAX_SLOTS}`)
    }
    if (entry.maxSlots !== undefined && entry.maxSlots < entry.slots) {
      fail(path, lastLine, `host ${entry.name} has ${entry.slots} slots over all its lines but max_slots=${entry.maxSlots}; raise max_slots or lower slots`)
    }
    return entry
  })
}
