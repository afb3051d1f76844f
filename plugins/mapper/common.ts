/**
 * Checks and bookkeeping shared by the built-in mappers: how many ranks each app gets, turning
 * a per-rank node list into placements, and the slot / max_slots rules with mpirun-like
 * messages (one line that says what was asked, what the allocation has, and what to do).
 * Everything here is proportional to the ranks asked for, never to the slots: a host may have
 * a million slots.
 */
import { ActionableError } from '../../src/errors'
import { MAX_RANKS } from '../../src/params/limits'
import type { MapRequest } from '../../src/plugins/types'
import type { Allocation, AppContext, NodeInfo, Placement, SequenceRun } from '../../src/runtime/job'

/** Nodes listed in messages before "and N more", so a 1000-node error stays one readable line. */
const LISTED_NODES = 6

export function totalSlots(nodes: NodeInfo[]): number {
  return nodes.reduce((sum, n) => sum + n.slots, 0)
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function listNodes(nodes: NodeInfo[], value: (n: NodeInfo) => string): string {
  const shown = nodes.slice(0, LISTED_NODES).map((n) => `${n.name}: ${value(n)}`)
  if (nodes.length > LISTED_NODES) shown.push(`and ${nodes.length - LISTED_NODES} more`)
  return shown.join(', ')
}

/** "(-H)", "(hostfile h)", "(default: this host)" — the allocation's origin for messages. */
function origin(allocation: Allocation): string {
  return `(${allocation.source.replace(/ \((.*)\)$/, ': $1')})`
}

/** The allocation has no nodes: nothing any mapper can do. */
export function requireNodes(req: MapRequest): NodeInfo[] {
  if (req.allocation.nodes.length === 0) {
    throw new ActionableError(`the allocation ${origin(req.allocation)} has no nodes; give hosts with -H host:N or a hostfile`)
  }
  return req.allocation.nodes
}

/**
 * Ranks over the slots without permission. `what` finishes "not enough slots available to ...",
 * `mapBy` is the --map-by value to suggest with :OVERSUBSCRIBE.
 */
export function notEnoughSlots(allocation: Allocation, what: string, mapBy: string): ActionableError {
  const nodes = allocation.nodes
  return new ActionableError(
    `there are not enough slots available to ${what}: the allocation ${origin(allocation)} has ` +
      `${plural(totalSlots(nodes), 'slot')} on ${plural(nodes.length, 'node')} (${listNodes(nodes, (n) => String(n.slots))}); ` +
      `use --oversubscribe or --map-by ${mapBy}:OVERSUBSCRIBE, or give more slots with -H host:N or a hostfile`,
  )
}

/** Every node that can still take a rank is at its max_slots (a cap even when oversubscribing). */
export function overMaxSlots(allocation: Allocation, ranks: number): ActionableError {
  const capped = allocation.nodes.filter((n) => n.maxSlots !== undefined)
  const limit = capped.reduce((sum, n) => sum + n.maxSlots!, 0)
  return new ActionableError(
    `cannot run ${plural(ranks, 'rank')}: the allocation ${origin(allocation)} holds at most ${limit} even with ` +
      `oversubscription (max_slots ${listNodes(capped, (n) => String(n.maxSlots))}); raise max_slots in the hostfile, add nodes or run fewer ranks`,
  )
}

/**
 * Ranks per app. An app without np takes whatever is left of `capacity` (slots, ppr places or
 * hostfile lines, named by `unit`) after the apps before it; none left is an error.
 */
export function appCounts(apps: AppContext[], capacity: number, unit: string): number[] {
  let used = 0
  const counts = apps.map((app, i) => {
    if (app.np !== undefined) {
      used += app.np
      return app.np
    }
    const left = capacity - used
    if (left <= 0) {
      const prog = app.argv[0] ?? '?'
      throw new ActionableError(
        `app ${i} (${prog}) has no -np and no ${unit} are left for it (${capacity} in all, ${used} taken by the apps before it); give it -np N`,
      )
    }
    used += left
    return left
  })
  if (used > MAX_RANKS) {
    const how = apps.every((app) => app.np !== undefined) ? 'lower -np' : `give -np (without it every one of the ${capacity} ${unit} gets a rank)`
    throw new ActionableError(`cannot run ${used} ranks: a job may have at most ${MAX_RANKS}; ${how}`)
  }
  return counts
}

/** The first `limit` places of a run-length sequence, one node name per rank. */
export function expandRuns(runs: SequenceRun[], limit: number): string[] {
  const out: string[] = []
  for (const run of runs) {
    for (let k = 0; k < run.count && out.length < limit; k++) out.push(run.name)
    if (out.length >= limit) break
  }
  return out
}

/** Global ranks 0.. in app order; rank r goes to nodeOfRank[r]. */
export function toPlacements(counts: number[], nodeOfRank: string[]): Placement[] {
  const out: Placement[] = []
  counts.forEach((count, app) => {
    for (let k = 0; k < count; k++) out.push({ rank: out.length, app, node: nodeOfRank[out.length]! })
  })
  return out
}

/**
 * Check a finished per-node count against slots (unless oversubscribing) and max_slots
 * (always). For mappers that decide placement first and check after: ppr and seq.
 */
export function checkNodeLoads(req: MapRequest, nodeOfRank: string[], mapBy: string): void {
  const loads = new Map<string, number>()
  for (const name of nodeOfRank) loads.set(name, (loads.get(name) ?? 0) + 1)
  const total = nodeOfRank.length
  for (const node of req.allocation.nodes) {
    const load = loads.get(node.name) ?? 0
    if (node.maxSlots !== undefined && load > node.maxSlots) {
      throw new ActionableError(
        `cannot run ${plural(total, 'rank')}: ${node.name} would get ${load} but its max_slots is ${node.maxSlots}, ` +
          `a limit even with --oversubscribe; raise max_slots in the hostfile, add nodes or run fewer ranks`,
      )
    }
    if (load > node.slots && !req.oversubscribe) {
      throw notEnoughSlots(req.allocation, `run ${plural(total, 'rank')} (${load} on ${node.name}, which has ${plural(node.slots, 'slot')})`, mapBy)
    }
  }
}

/**
 * Index of the first node at or after `start` (wrapping) whose load is below its limit, or -1.
 * Round robin helper for the slot and node mappers.
 */
export function nextNode(nodes: NodeInfo[], loads: number[], start: number, limit: (n: NodeInfo) => number): number {
  for (let k = 0; k < nodes.length; k++) {
    const i = (start + k) % nodes.length
    if (loads[i]! < limit(nodes[i]!)) return i
  }
  return -1
}

export const maxSlotsOf = (n: NodeInfo): number => n.maxSlots ?? Infinity
