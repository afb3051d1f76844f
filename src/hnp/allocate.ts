/**
 * The allocation a command runs on (-H, --hostfile, or this host) and the launcher that will
 * start its daemons. Shared by `ompx run` and `ompx hnp`.
 */
import { availableParallelism } from 'node:os'
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { LauncherPlugin } from '../plugins/types'
import { buildAllocation } from '../runtime/allocation'
import type { Allocation } from '../runtime/job'
import { chooseLauncher, markSimulated } from './choose-launcher'

export function buildJobAllocation(
  registry: Registry,
  params: Params,
  opts: Record<string, unknown>,
): { allocation: Allocation; launcher: LauncherPlugin } {
  const allocation = buildAllocation({
    hosts: opts.host as string[] | undefined,
    hostfile: opts.hostfile as string | undefined,
    defaultSlots: availableParallelism(),
  })
  const named = (opts.launcher as string | undefined) || params.get('launcher') || undefined
  markSimulated(allocation.nodes, named)
  return { allocation, launcher: chooseLauncher(registry, allocation.nodes, named) }
}
