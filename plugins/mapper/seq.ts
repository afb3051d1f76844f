/**
 * `--map-by seq`: rank i runs on the host of hostfile line i (or -H item i), duplicates
 * included, so the user writes the placement line by line. Without a hostfile or -H the
 * sequence is each node repeated once per slot, which maps like `slot`.
 */
import { ActionableError } from '../../src/errors'
import { definePlugin } from '../../src/plugins/types'
import type { MapRequest } from '../../src/plugins/types'
import type { Placement } from '../../src/runtime/job'
import { appCounts, checkNodeLoads, expandRuns, requireNodes, toPlacements } from './common'

export function mapBySeq(req: MapRequest): Placement[] {
  const nodes = requireNodes(req)
  const { allocation } = req
  const sequence = allocation.sequence ?? nodes.map((n) => ({ name: n.name, count: n.slots }))
  const known = new Set(nodes.map((n) => n.name))
  const stray = sequence.find((run) => !known.has(run.name))?.name
  if (stray !== undefined) {
    // Only reachable when an allocation is built by hand; buildAllocation keeps them in step.
    throw new ActionableError(`--map-by seq: host ${stray} is in the sequence but not in the allocation (${allocation.source}); list it as a node`)
  }
  const length = sequence.reduce((sum, run) => sum + run.count, 0)
  const counts = appCounts(req.apps, length, 'hostfile lines')
  const ranks = counts.reduce((a, b) => a + b, 0)
  if (ranks > length) {
    throw new ActionableError(
      `--map-by seq puts one rank per hostfile line, but ${ranks} ranks were asked for and ${allocation.source} has ${length} lines; lower -np or add lines`,
    )
  }
  const nodeOfRank = expandRuns(sequence, ranks)
  checkNodeLoads(req, nodeOfRank, 'seq')
  return toPlacements(counts, nodeOfRank)
}

export default definePlugin(() => ({
  kind: 'mapper',
  name: 'seq',
  priority: 1,
  description: 'One rank per hostfile line, in order (--map-by seq)',
  map: mapBySeq,
}))
