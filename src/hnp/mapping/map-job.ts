/**
 * Mapping a job onto an allocation: the mapper chosen by --map-by (or parameters), the
 * oversubscription rule, and local ranks. Shared by `ompx run` and jobs submitted to `ompx hnp`.
 */
import { ActionableError } from '../../errors'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import { assignLocalRanks, type Allocation, type AppContext, type ProcInfo } from '../../runtime/job'
import { parseMapBy } from '../../runtime/map-by'

export interface MapOptions {
  mapBy?: string
  oversubscribe: boolean
  stdinRank?: number
}

export function mapJob(registry: Registry, params: Params, allocation: Allocation, apps: AppContext[], o: MapOptions): ProcInfo[] {
  const mapBy = parseMapBy(o.mapBy ?? (params.get('rmaps_base_mapping_policy') || undefined))
  const mapper = registry.select('mapper', mapBy.mapper)
  const oversubscribe = !mapBy.nooversubscribe && (o.oversubscribe || Boolean(mapBy.oversubscribe))
  const procs = assignLocalRanks(mapper.map({ allocation, apps, arg: mapBy.arg, oversubscribe }))
  if (o.stdinRank !== undefined && o.stdinRank >= procs.length) {
    throw new ActionableError(`--stdin ${o.stdinRank}: the job has only ${procs.length} ranks`)
  }
  return procs
}
