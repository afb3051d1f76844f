/**
 * `--map-by` parsing, Open MPI spelling: `slot`, `node`, `ppr:N:node`, `seq`, each optionally
 * followed by modifiers `:OVERSUBSCRIBE` / `:NOOVERSUBSCRIBE` (also comma-separated, as in
 * Open MPI 4: `node:NOOVERSUBSCRIBE,...`). Only the form is checked here: mapper names that are
 * not built in pass through, because plugins may add mappers; the registry rejects unknown ones.
 */
import { ActionableError } from '../errors'
import { MAX_SLOTS } from '../params/limits'

export interface MapBySpec {
  /** Undefined when only modifiers were given (`--map-by :OVERSUBSCRIBE`): let the registry choose. */
  mapper?: string
  /** Text after the mapper name, e.g. "2:node" for ppr:2:node. */
  arg?: string
  oversubscribe?: boolean
  nooversubscribe?: boolean
}

/** Legacy spellings (`--bynode`, `--map-by byslot`) mapped to today's names. */
const LEGACY: Record<string, string> = { byslot: 'slot', bynode: 'node' }
const BUILTIN = new Set(['slot', 'node', 'ppr', 'seq'])
const PPR_FORM = 'ppr:N:node, e.g. --map-by ppr:2:node'

function modifierError(value: string, mod: string): never {
  throw new ActionableError(`--map-by ${value}: unknown modifier "${mod}"; ompx supports :OVERSUBSCRIBE and :NOOVERSUBSCRIBE`)
}

/** Parse a --map-by value. Undefined or empty input -> {} (nothing chosen). */
export function parseMapBy(value: string | undefined): MapBySpec {
  if (value === undefined || value.trim() === '') return {}
  const parts = value.trim().split(':')
  const head = parts.shift()!
  const lower = head.toLowerCase()
  const spec: MapBySpec = {}
  if (head !== '') spec.mapper = LEGACY[lower] ?? (BUILTIN.has(lower) ? lower : head)

  let rest = parts
  if (spec.mapper === 'ppr') {
    // ppr takes two positional fields before any modifier: N and the resource.
    // Modifiers may follow the resource after a comma too (ppr:2:node,OVERSUBSCRIBE).
    const [resource = '', ...mods] = (parts[1] ?? '').split(',')
    const arg = parts[0] === undefined ? '' : `${parts[0]}:${resource}`
    parsePpr(arg, `--map-by ${value}`)
    spec.arg = arg.toLowerCase()
    rest = [...mods, ...parts.slice(2)]
  }

  const argParts: string[] = []
  for (const part of rest) {
    for (const word of part.split(',')) {
      const mod = word.trim().toUpperCase()
      if (mod === '') continue
      if (mod === 'OVERSUBSCRIBE') spec.oversubscribe = true
      else if (mod === 'NOOVERSUBSCRIBE') spec.nooversubscribe = true
      // Built-in mappers take no argument, so anything else after them is a bad modifier;
      // a plugin mapper gets the unknown words as its argument.
      else if (spec.mapper === undefined || BUILTIN.has(spec.mapper)) modifierError(value, word)
      else argParts.push(word)
    }
  }
  if (argParts.length) spec.arg = argParts.join(':')
  if (spec.oversubscribe && spec.nooversubscribe) {
    throw new ActionableError(`--map-by ${value}: OVERSUBSCRIBE and NOOVERSUBSCRIBE contradict each other; keep one`)
  }
  return spec
}

export interface PprSpec {
  perNode: number
  resource: 'node'
}

/** Parse the argument of the ppr mapper ("2:node"). `where` prefixes error messages. */
export function parsePpr(arg: string | undefined, where = '--map-by ppr'): PprSpec {
  const [count = '', resource = '', ...extra] = (arg ?? '').split(':')
  if (count === '' || resource === '' || extra.length) {
    throw new ActionableError(`${where}: ppr needs a count and a resource; write ${PPR_FORM}`)
  }
  if (!/^\d+$/.test(count) || Number(count) < 1) {
    throw new ActionableError(`${where}: "${count}" is not a count of ranks; write ${PPR_FORM} with N a whole number of at least 1`)
  }
  if (Number(count) > MAX_SLOTS) {
    throw new ActionableError(`${where}: ${count} ranks per node is too many; N may be at most ${MAX_SLOTS}`)
  }
  if (resource.toLowerCase() !== 'node') {
    throw new ActionableError(`${where}: ppr resource "${resource}" is not supported, only node; write ${PPR_FORM}`)
  }
  return { perNode: Number(count), resource: 'node' }
}
