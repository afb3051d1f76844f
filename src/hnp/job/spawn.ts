/**
 * MPI_Comm_spawn for an HNP's jobs: a rank's PMI `mcmd=spawn` reaches the HNP as `orted.spawn`
 * and becomes a child job here, mapped onto the HNP's allocation like any job (info keys `host`,
 * `wdir` and `path` honoured, as Open MPI's dpm_orte.c does), its ranks started with
 * `PMI_SPAWNED=1` and the parent's preput values (the parent's port) in their nodes' PMI caches.
 * The child runs through the same lifecycle (`ompx ps` lists it); its output goes where the
 * parent's goes, and the parent's job waits for it and reports its failure (job-runner.ts).
 */
import { ActionableError } from '../../errors'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import type { Allocation, AppContext } from '../../runtime/job'
import type { Hnp } from '../hnp'
import { preflightApp } from '../launch/preflight'
import { mapJob } from '../mapping/map-job'
import type { OutputSink } from '../output/output-router'
import { coordinatorSpec } from '../snapc/plan'
import type { Spawner } from './spawn-types'
import { startJob } from './lifecycle'


export interface SpawnContext {
  hnp: Hnp
  registry: Registry
  params: Params
  allocation: Allocation
  launcher: LauncherPlugin
  /** Where a child's output goes (the parent's terminal, or its submitting client). */
  router(jobid: string): OutputSink
  killGraceSec: number
  pmiMode: 'fd' | 'port'
}

const info = (entries: [string, string][], key: string) => entries.find(([k]) => k === key)?.[1]

export function spawner(ctx: SpawnContext): Spawner {
  const spawn: Spawner = async (parent, req) => {
    const { hnp, registry, params, allocation } = ctx
    const base = parent.apps[0]!
    const apps: AppContext[] = req.apps.map((a, index) => {
      const path = info(a.info, 'path')
      const exe = path && !a.argv[0]!.includes('/') ? `${path.replace(/\/$/, '')}/${a.argv[0]}` : a.argv[0]!
      return { index, np: a.np, argv: [exe, ...a.argv.slice(1)], env: { ...base.env, PMI_SPAWNED: '1' }, cwd: info(a.info, 'wdir') ?? base.cwd }
    })
    // info host: the child's ranks go to that node of the allocation (all apps of one spawn).
    const host = req.apps.map((a) => info(a.info, 'host')).find((h) => h !== undefined)
    const nodes = host ? allocation.nodes.filter((n) => n.name === host) : allocation.nodes
    if (nodes.length === 0) throw new ActionableError(`spawn: host ${host} is not in the allocation (${allocation.nodes.map((n) => n.name).join(', ')})`)
    const procs = mapJob(registry, params, { ...allocation, nodes, sequence: undefined }, apps, { oversubscribe: true })
    for (const app of apps) preflightApp(app, { ...process.env, ...app.env })
    await hnp.startDaemons(nodes.filter((n) => procs.some((p) => p.node === n.name)), ctx.launcher)
    const jobid = hnp.newJobId()
    const { runner, done } = startJob(hnp, {
      jobid,
      apps,
      procs,
      output: { jobid, tag: false, timestamp: false, mergeStderr: false },
      router: ctx.router(jobid),
      stdin: { kind: 'none' },
      errmgrContinue: false,
      killGraceSec: ctx.killGraceSec,
      pmiMode: ctx.pmiMode,
      pmiPreput: req.preput,
      spawn,
      quiet: false,
      who: `ompx run (job ${jobid}, spawned by ${parent.jobid})`,
      cr: coordinatorSpec({ registry, params, jobid, apps, procs, allocation, launcher: ctx.launcher.name }),
    })
    return { jobid, done, stop: () => runner.interrupt('SIGTERM') }
  }
  return spawn
}
