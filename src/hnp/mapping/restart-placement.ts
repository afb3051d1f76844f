/**
 * Where a restarted job runs: the snapshot's app contexts, and its ranks placed as they were
 * when every old node is in the new allocation, else mapped afresh (other nodes, --map-by).
 */
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import { assignLocalRanks, type Allocation, type AppContext, type ProcInfo } from '../../runtime/job'
import type { GlobalMeta, SeqMeta } from '../../sstore/types'
import { mapJob } from './map-job'
import { preflightApp } from '../launch/preflight'

export function restartApps(meta: GlobalMeta): AppContext[] {
  const apps = meta.apps.map((a) => ({ index: a.index, np: a.np, argv: a.argv, env: a.env, cwd: a.cwd }))
  for (const app of apps) preflightApp(app, process.env)
  return apps
}

export function restartPlacement(
  registry: Registry,
  params: Params,
  allocation: Allocation,
  apps: AppContext[],
  seq: SeqMeta,
  o: { mapBy?: string; oversubscribe: boolean },
): ProcInfo[] {
  const names = new Set(allocation.nodes.map((n) => n.name))
  if (!o.mapBy && seq.procs.every((p) => names.has(p.node))) return assignLocalRanks(seq.procs)
  return mapJob(registry, params, allocation, apps, o)
}
