/**
 * The allocation a command runs on (-H, --hostfile, or this host) and the launcher that will
 * start its daemons. Shared by `ompx run` and `ompx hnp`.
 */
import { availableParallelism, networkInterfaces } from 'node:os'
import type { RunOptionValues } from '../../args/run-options'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import { buildAllocation } from '../../runtime/allocation'
import { isOnThisMachine } from '../../runtime/hosts'
import { allocationFromSlurm } from '../../runtime/slurm-env'
import type { Allocation, NodeInfo } from '../../runtime/job'
import { chooseLauncher, markSimulated } from '../launch/choose-launcher'

export function buildJobAllocation(
  registry: Registry,
  params: Params,
  opts: Pick<RunOptionValues, 'host' | 'hostfile' | 'launcher'>,
): { allocation: Allocation; launcher: LauncherPlugin } {
  const { host: hosts, hostfile } = opts
  // Inside a Slurm allocation with no -H/--hostfile, the allocation is Slurm's (as mpirun does).
  const slurm = hosts || hostfile ? undefined : allocationFromSlurm(process.env)
  const allocation = slurm ?? buildAllocation({ hosts, hostfile, defaultSlots: availableParallelism() })
  const named = opts.launcher || params.get('launcher') || undefined
  markSimulated(allocation.nodes, named)
  return { allocation, launcher: chooseLauncher(registry, allocation.nodes, named) }
}

/**
 * Where the HNP listens for daemons and tools: `hnp_address` if set; 127.0.0.1 when every
 * node is on this machine (simulated nodes included); otherwise this host's first non-loopback
 * IPv4 address, which remote daemons can reach.
 */
export function hnpAddress(params: Params, nodes: NodeInfo[]): string {
  const set = params.get('hnp_address')
  if (set) return set
  if (nodes.every((n) => n.launcher === 'local' || isOnThisMachine(n.address ?? n.name))) return '127.0.0.1'
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return '127.0.0.1'
}

/** Launcher flags are parameters underneath, so params files and OMPX_MCA_* can set them too. */
export function launcherFlagsToParams(opts: Pick<RunOptionValues, 'mca' | 'launch-agent' | 'preload-binary'>): void {
  const mca = (opts.mca ??= [])
  if (opts['launch-agent']) mca.push(['launch_agent', opts['launch-agent']])
  if (opts['preload-binary']) mca.push(['preload_binary', '1'])
}
