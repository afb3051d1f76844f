/**
 * `--map-by ppr:N:node`: N ranks on each node, filled node by node. The N-per-node budget is
 * for the whole job, so MPMD apps share it in order: an app without -np takes what is left.
 */
import { ActionableError } from '../../src/errors'
import { definePlugin } from '../../src/plugins/types'
import type { MapRequest } from '../../src/plugins/types'
import type { Placement } from '../../src/runtime/job'
import { parsePpr } from '../../src/runtime/map-by'
import { appCounts, checkNodeLoads, expandRuns, requireNodes, toPlacements } from './common'

export function mapByPpr(req: MapRequest): Placement[] {
  const nodes = requireNodes(req)
  const { perNode } = parsePpr(req.arg)
  const mapBy = `ppr:${perNode}:node`
  const capacity = perNode * nodes.length
  const counts = appCounts(req.apps, capacity, `places (${mapBy} on ${nodes.length} nodes)`)
  const ranks = counts.reduce((a, b) => a + b, 0)
  if (ranks > capacity) {
    throw new ActionableError(
      `${mapBy} places at most ${capacity} ranks on ${nodes.length} node${nodes.length === 1 ? '' : 's'} but ${ranks} were asked for; lower -np, raise N or add nodes`,
    )
  }
  const nodeOfRank = expandRuns(nodes.map((n) => ({ name: n.name, count: perNode })), ranks)
  checkNodeLoads(req, nodeOfRank, mapBy)
  return toPlacements(counts, nodeOfRank)
}

export default definePlugin(() => ({
  kind: 'mapper',
  name: 'ppr',
  priority: 5,
  description: 'N ranks per node, node by node (--map-by ppr:N:node)',
  map: mapByPpr,
}))
