/**
 * `--map-by node`: deal ranks round robin across nodes, one per node per pass, skipping nodes
 * whose slots are full. Once every slot is taken (only with oversubscription) the round robin
 * goes on over nodes below their max_slots. MPMD apps continue where the previous app stopped.
 */
import { definePlugin } from '../../src/plugins/types'
import type { MapRequest } from '../../src/plugins/types'
import type { Placement } from '../../src/runtime/job'
import { appCounts, maxSlotsOf, nextNode, notEnoughSlots, overMaxSlots, requireNodes, toPlacements, totalSlots } from './common'

export function mapByNode(req: MapRequest): Placement[] {
  const nodes = requireNodes(req)
  const slots = totalSlots(nodes)
  const counts = appCounts(req.apps, slots, 'free slots')
  const ranks = counts.reduce((a, b) => a + b, 0)
  if (ranks > slots && !req.oversubscribe) throw notEnoughSlots(req.allocation, `run ${ranks} ranks`, 'node')

  const loads = nodes.map(() => 0)
  const nodeOfRank: string[] = []
  let at = 0
  for (let r = 0; r < ranks; r++) {
    let i = nextNode(nodes, loads, at, (n) => n.slots)
    if (i < 0) i = nextNode(nodes, loads, at, maxSlotsOf)
    if (i < 0) throw overMaxSlots(req.allocation, ranks)
    loads[i]!++
    nodeOfRank.push(nodes[i]!.name)
    at = i + 1
  }
  return toPlacements(counts, nodeOfRank)
}

export default definePlugin(() => ({
  kind: 'mapper',
  name: 'node',
  priority: 10,
  description: 'Round robin across nodes, one rank per node per pass (--map-by node)',
  map: mapByNode,
}))
