/**
 * Build the job's allocation (the nodes and their slots) from -H and --hostfile, following
 * mpirun's rules: -H alone lists the hosts, a hostfile alone lists the hosts, both means -H
 * picks hosts out of the hostfile, and neither means "this host, one slot per core".
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { ActionableError, errorMessage } from '../errors'
import { MAX_SLOTS } from '../params/limits'
import { parseHostfileLines, mergeHostfileLines } from './hostfile'
import type { Allocation, NodeInfo } from './job'

export interface AllocationOptions {
  /** -H values; each may be a comma list "h1:2,h2"; the option is repeatable. */
  hosts?: string[]
  /** --hostfile path. */
  hostfile?: string
  /** Slots for this host when nothing says otherwise (the number of cores). */
  defaultSlots: number
}

/** One -H item: "h1:2" -> { name: "h1", slots: 2, given: true }; "h2" -> slots 1, not given. */
export interface DashHostItem {
  name: string
  slots: number
  given: boolean
}

/** Split -H values into items, in order, duplicates kept. IPv6 counts need brackets: [::1]:2. */
export function parseDashHost(values: string[]): DashHostItem[] {
  const items: DashHostItem[] = []
  for (const value of values) {
    for (const raw of value.split(',')) {
      const item = raw.trim()
      if (item === '') throw new ActionableError(`-H ${value}: empty host name; write -H host1:N,host2`)
      let name = item
      let count: string | undefined
      const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(item)
      if (bracketed) {
        name = bracketed[1]!
        count = bracketed[2]
      } else if (item.split(':').length === 2) {
        // Exactly one colon: host:N. More colons is a bare IPv6 address without a count.
        const colon = item.indexOf(':')
        name = item.slice(0, colon)
        count = item.slice(colon + 1)
      }
      if (name === '') throw new ActionableError(`-H ${value}: "${item}" has no host name; write -H host:N`)
      if (count === undefined) {
        items.push({ name, slots: 1, given: false })
        continue
      }
      if (!/^\d+$/.test(count) || Number(count) < 1) {
        throw new ActionableError(`-H ${value}: "${item}" has a bad slot count "${count}"; write host:N with N a whole number of at least 1`)
      }
      if (Number(count) > MAX_SLOTS) {
        throw new ActionableError(`-H ${value}: "${item}" has ${count} slots; a host may have at most ${MAX_SLOTS}`)
      }
      items.push({ name, slots: Number(count), given: true })
    }
  }
  return items
}

/** Merge -H items per host (repeats add up and count as given), first-appearance order. */
function mergeDashHost(items: DashHostItem[]): NodeInfo[] {
  const byName = new Map<string, NodeInfo>()
  for (const it of items) {
    const node = byName.get(it.name)
    if (node) {
      node.slots += it.slots
      node.slotsGiven = true
      if (node.slots > MAX_SLOTS) {
        throw new ActionableError(`-H gives host ${it.name} ${node.slots} slots over all its items; a host may have at most ${MAX_SLOTS}`)
      }
    } else byName.set(it.name, { name: it.name, slots: it.slots, slotsGiven: it.given })
  }
  return [...byName.values()]
}

function readHostfileText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new ActionableError(`cannot read hostfile ${path}: ${errorMessage(err)}; check the --hostfile path`)
  }
}

export function buildAllocation(opts: AllocationOptions): Allocation {
  const items = opts.hosts?.length ? parseDashHost(opts.hosts) : undefined
  if (!opts.hostfile) {
    if (items) return { nodes: mergeDashHost(items), source: '-H', sequence: items.map((it) => ({ name: it.name, count: it.slots })) }
    const slots = Math.min(MAX_SLOTS, Math.max(1, opts.defaultSlots))
    return { nodes: [{ name: hostname(), slots, slotsGiven: false }], source: 'default (this host)' }
  }

  const path = opts.hostfile
  const lines = parseHostfileLines(readHostfileText(path), path)
  const entries = mergeHostfileLines(lines, path, opts.defaultSlots)
  if (entries.length === 0) throw new ActionableError(`hostfile ${path} lists no hosts; add one host per line, e.g. "node1 slots=4"`)
  // Strip the parser's `line` so nodes are plain NodeInfo.
  const fromFile = new Map<string, NodeInfo>(entries.map(({ line: _line, ...node }) => [node.name, node]))
  if (!items) return { nodes: [...fromFile.values()], source: `hostfile ${path}`, sequence: lines.map((l) => ({ name: l.name, count: 1 })) }

  // Both: -H chooses hosts out of the hostfile, in -H order. An explicit -H count replaces the
  // hostfile's slots for that host; a bare name keeps them. Hosts outside the hostfile are an
  // error, as in Open MPI (the hostfile is the allocation, -H only narrows it).
  const nodes: NodeInfo[] = []
  for (const dash of mergeDashHost(items)) {
    const node = fromFile.get(dash.name)
    if (!node) {
      throw new ActionableError(`-H names host ${dash.name}, which is not in hostfile ${path}; add it to the hostfile or drop it from -H`)
    }
    const chosen: NodeInfo = dash.slotsGiven ? { ...node, slots: dash.slots, slotsGiven: true } : { ...node }
    if (chosen.maxSlots !== undefined && chosen.slots > chosen.maxSlots) {
      throw new ActionableError(`-H gives host ${dash.name} ${chosen.slots} slots but hostfile ${path} caps it at max_slots=${chosen.maxSlots}; lower the -H count`)
    }
    nodes.push(chosen)
  }
  const kept = new Set(nodes.map((n) => n.name))
  return {
    nodes,
    source: `hostfile ${path} restricted by -H`,
    sequence: lines.filter((l) => kept.has(l.name)).map((l) => ({ name: l.name, count: 1 })),
  }
}
