/**
 * MPI_Comm_spawn / MPI_Comm_spawn_multiple in the HNP (dpm_orte.c's spawn, Hydra's fn_spawn): a
 * rank's request becomes a child job on the parent's allocation, started through the job
 * lifecycle like any other. The MPI_Info keys honoured are those of dpm_orte.c and Hydra:
 * `host` (comma-separated hosts, `host:N` for N slots) and `hostfile` restrict the app to those
 * nodes of the allocation; `wdir` is its working directory (relative to the parent's); `path`
 * lists directories to find the program in. Other keys are ignored, as both do. Each app is
 * mapped on its own (it may have its own hosts) with the job's mapper, oversubscribing as Hydra
 * does: a spawn is never refused for want of free slots. The children get `PMI_SPAWNED=1`, the
 * parent's app variables (-x, or a submitting client's environment) and, in their kv space, the
 * parent's preput values (PARENT_ROOT_PORT_NAME: where the parent waits for them).
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { ActionableError } from '../../errors'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import { mergeHostfileLines, parseHostfileLines } from '../../runtime/hostfile'
import { assignLocalRanks, type Allocation, type AppContext, type NodeInfo, type Placement, type ProcInfo } from '../../runtime/job'
import type { SpawnAppWire } from '../../wire/messages'
import { preflightApp } from '../launch/preflight'
import { mapJob } from '../mapping/map-job'
import type { OutputSink } from '../output/output-router'

/** What a job's spawned children are started with: the allocation and plugins of its run. */
export interface SpawnSettings {
  registry: Registry
  params: Params
  allocation: Allocation
  launcher: LauncherPlugin
  /** Where a child's output goes (a submitting client); default: this process's stdout/stderr. */
  router?(jobid: string): OutputSink
}

/** A child job, placed and checked, ready to start. */
export interface ChildPlan {
  apps: AppContext[]
  procs: ProcInfo[]
  preput: [string, string][]
}

/** Turn a spawn request into a child job's apps and map, or throw an ActionableError saying why not. */
export function planSpawn(settings: SpawnSettings, parentApp: AppContext, req: { apps: SpawnAppWire[]; preput: [string, string][] }): ChildPlan {
  const apps: AppContext[] = []
  const placements: Placement[] = []
  for (const [index, a] of req.apps.entries()) {
    const info = new Map(a.info)
    const cwd = info.has('wdir') ? resolve(parentApp.cwd, info.get('wdir')!) : parentApp.cwd
    const argv = [findProgram(a.argv[0]!, info.get('path'), cwd), ...a.argv.slice(1)]
    const app: AppContext = { index, np: a.np, argv, env: { ...parentApp.env, PMI_SPAWNED: '1' }, cwd }
    preflightApp(app, process.env)
    apps.push(app)
    const allocation = restrict(settings.allocation, info, parentApp.cwd)
    const mapped = mapJob(settings.registry, settings.params, allocation, [{ ...app, index: 0 }], { oversubscribe: true })
    for (const p of mapped) placements.push({ rank: placements.length, app: index, node: p.node })
  }
  return { apps, procs: assignLocalRanks(placements), preput: req.preput }
}

/** The `path` info key: the first of its directories (colon-separated) that holds the program. */
function findProgram(prog: string, path: string | undefined, cwd: string): string {
  if (path === undefined || prog.includes('/')) return prog
  for (const dir of path.split(':').filter(Boolean)) {
    const candidate = resolve(cwd, dir, prog)
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK)
        return candidate
      }
    } catch {
      // not here: the next directory
    }
  }
  throw new ActionableError(`program "${prog}" is not in any directory of the path info key (${path})`)
}

/** The allocation an app may use: all of it, or the nodes its `host` / `hostfile` keys name. */
function restrict(allocation: Allocation, info: Map<string, string>, cwd: string): Allocation {
  const host = info.get('host') ?? info.get('hosts')
  const file = info.get('hostfile')
  if (host === undefined && file === undefined) return allocation
  const wanted: { name: string; slots?: number }[] = []
  if (host !== undefined) wanted.push(...hostItems(host))
  if (file !== undefined) wanted.push(...hostfileItems(resolve(cwd, file)))
  const nodes: NodeInfo[] = []
  for (const w of wanted) {
    const node = allocation.nodes.find((n) => n.name === w.name)
    if (!node) {
      const known = allocation.nodes.map((n) => n.name).join(', ')
      throw new ActionableError(`host "${w.name}" (spawn info key ${host !== undefined ? 'host' : 'hostfile'}) is not in the job's allocation (${known})`)
    }
    const seen = nodes.find((n) => n.name === w.name)
    if (seen) seen.slots += w.slots ?? 1
    else nodes.push({ ...node, slots: w.slots ?? node.slots })
  }
  return { nodes, source: `spawn info ${host !== undefined ? `host ${host}` : `hostfile ${file}`}` }
}

/** `a,b:2`: host names, with a slot count where given. */
function hostItems(value: string): { name: string; slots?: number }[] {
  return value.split(',').map((raw) => {
    const [name, count] = raw.trim().split(':')
    if (!name) throw new ActionableError(`spawn info key host "${value}" has an empty host name`)
    if (count === undefined) return { name }
    if (!/^\d+$/.test(count) || Number(count) < 1) throw new ActionableError(`spawn info key host "${value}": "${raw}" has a bad slot count`)
    return { name, slots: Number(count) }
  })
}

function hostfileItems(path: string): { name: string; slots?: number }[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new ActionableError(`spawn info key hostfile: cannot read ${path}`)
  }
  return mergeHostfileLines(parseHostfileLines(text, path), path).map((e) => ({ name: e.name, slots: e.slotsGiven ? e.slots : undefined }))
}
