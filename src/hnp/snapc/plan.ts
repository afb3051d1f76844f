/**
 * How a job will be checkpointed, decided once when it starts: its CRS and snapshot store
 * (from --mca crs / sstore, or priorities), where snapshots go, retention, and what global.json
 * must record so `ompx restart` can start the job again (apps, nodes, parameters).
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Params } from '../../params/params'
import { ENV_PREFIX } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { Allocation, AppContext, ProcInfo } from '../../runtime/job'
import { snapshotRef } from '../../sstore/refs'
import { META_VERSION } from '../../sstore/types'
import { KV_MAX_BYTES_DEFAULT } from './app-services'
import type { CoordinatorSpec, RestartImages } from './job-coordinator'

export interface PlanInput {
  registry: Registry
  params: Params
  jobid: string
  apps: AppContext[]
  procs: ProcInfo[]
  allocation: Allocation
  launcher: string
  /** Continue an existing global snapshot (restart, recovery) instead of starting a new one. */
  ref?: string
  restart?: RestartImages
  intervalSec?: number
  /** Overrides sstore_base_global_snapshot_dir (a restart continues its snapshot where it is). */
  globalDir?: string
}

/** `sstore_base_global_snapshot_dir`, or ~/.ompx/snapshots (created when the first snapshot is). */
export function globalDirOf(params: Params): string {
  const set = params.get('sstore_base_global_snapshot_dir')
  return set ? resolve(params.cwd, set) : join(params.home || homedir(), '.ompx', 'snapshots')
}

/**
 * A new job's snapshot ref. Job ids are <hnp pid>.<n>, and pids come back: never continue a
 * stranger's snapshot, take the next free suffix instead.
 */
export function freshSnapshotRef(globalDir: string, jobid: string): string {
  for (let k = 1; ; k++) {
    const ref = snapshotRef(k === 1 ? jobid : `${jobid}_${k}`)
    if (!existsSync(join(globalDir, ref))) return ref
  }
}

export function coordinatorSpec(i: PlanInput): CoordinatorSpec {
  const { registry, params } = i
  const crs = registry.select('crs', params.get('crs') || undefined).name
  const sstore = registry.select('sstore', params.get('sstore') || undefined).name
  const globalDir = i.globalDir ?? globalDirOf(params)
  const ref = i.ref ?? freshSnapshotRef(globalDir, i.jobid)
  // Parameters the user set (not defaults): a restart runs with the same ones unless overridden.
  const saved: Record<string, string> = {}
  for (const [k, v] of Object.entries(params.toEnv())) saved[k.slice(ENV_PREFIX.length)] = v
  Object.assign(saved, { crs, sstore, launcher: i.launcher })
  const countOf = (app: number) => i.procs.filter((p) => p.app === app).length
  return {
    registry,
    crs,
    intervalSec: i.intervalSec,
    nodes: i.allocation.nodes.map((n) => ({ name: n.name, slots: n.slots })),
    kvMaxBytes: params.getNumber('snapc_kv_max_bytes', KV_MAX_BYTES_DEFAULT),
    restart: i.restart,
    plan: {
      globalDir,
      ref,
      crs,
      sstore,
      keep: params.getNumber('sstore_base_keep', 0),
      timeoutSec: params.getNumber('snapc_base_timeout', 300),
      base: {
        version: META_VERSION,
        ref,
        jobid: i.jobid,
        created: Date.now(),
        apps: i.apps.map((a) => ({ index: a.index, np: countOf(a.index), argv: a.argv, env: a.env, cwd: a.cwd })),
        nodes: i.allocation.nodes.filter((n) => i.procs.some((p) => p.node === n.name)).map((n) => ({ name: n.name, slots: n.slots })),
        params: saved,
      },
    },
  }
}
