/**
 * `--map-by slot` (the default): fill each node's slots in node order before moving on, so
 * consecutive ranks share a node. With oversubscription the ranks beyond the slots are dealt
 * round robin across nodes (skipping nodes at max_slots); ranks stay contiguous per node, as
 * Open MPI's by-slot mapper does when it balances extra ranks.
 */
import { definePlugin } from '../../src/plugins/types'
import type { MapRequest } from '../../src/plugins/types'
import type { Placement } from '../../src/runtime/job'
import { appCounts, maxSlotsOf, nextNode, notEnoughSlots, overMaxSlots, requireNodes, toPlacements, totalSlots } from './common'

/** Ranks per node for `ranks` ranks by slot: fill the slots, then spread the rest. */
export function countsBySlot(req: MapRequest, ranks: number): number[] {
  const nodes = requireNodes(req)
  let left = ranks
  const loads = nodes.map((n) => {
    const take = Math.min(left, n.slots, maxSlotsOf(n))
    left -= take
    return take
  })
  if (left > 0 && !req.oversubscribe) throw notEnoughSlots(req.allocation, `run ${ranks} ranks`, 'slot')
  for (let at = 0; left > 0; left--) {
    const i = nextNode(nodes, loads, at, maxSlotsOf)
    if (i < 0) throw overMaxSlots(req.allocation, ranks)
    loads[i]!++
    at = i + 1
  }
  return loads
}

export function mapBySlot(req: MapRequest): Placement[] {
  const nodes = requireNodes(req)
  const counts = appCounts(req.apps, totalSlots(nodes), 'free slots')
  const ranks = counts.reduce((a, b) => a + b, 0)
  const loads = countsBySlot(req, ranks)
  const nodeOfRank = nodes.flatMap((n, i) => Array<string>(loads[i]!).fill(n.name))
  return toPlacements(counts, nodeOfRank)
}

export default definePlugin(() => ({
  kind: 'mapper',
  name: 'slot',
  priority: 20,
  description: 'Fill each node\'s slots in order before moving to the next node (--map-by slot, the default)',
  map: mapBySlot,
}))
