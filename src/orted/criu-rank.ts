/**
 * Ranks of a job with crs `criu` (docs/criu.md): each is a process tree in its own pid namespace,
 * launched by launchUnderCriu or brought back by restoreTree from the rank's images, and handed
 * to the daemon as a RankProcess exactly like a spawned rank.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CRIU_INFO_FILE, criuUnavailable } from '../../plugins/crs/criu'
import { findCriu } from '../criu/binary'
import type { DumpInfo } from '../criu/dump'
import { launchUnderCriu } from '../criu/launch'
import { criuParams, type CriuParams } from '../criu/params'
import { restoreTree } from '../criu/restore'
import type { CriuTree } from '../criu/tree'
import { RANK_META } from '../sstore/types'
import type { LaunchSpec } from './local-daemon'
import { isUserSignal, type RankProcess } from './rank-process'

/** The crs_criu_* options of the job, and why crs criu cannot work on this node (null if it can). */
export function criuSetup(param: (key: string) => string | undefined): { opts: CriuParams; problem: string | null } {
  let opts: CriuParams
  try {
    opts = criuParams(param)
  } catch (e) {
    return { opts: {}, problem: `crs criu: ${(e as Error).message}` }
  }
  const why = criuUnavailable(opts.path)
  return { opts, problem: why ? `crs criu cannot run ranks here: ${why}` : null }
}

function treeRank(tree: CriuTree): RankProcess {
  return {
    pid: tree.pid,
    // Killing the wrapper (unshare / criu restore) kills the tree; the root's group is the rank.
    groups: [tree.wrapperPid, tree.pid],
    stdout: tree.stdout,
    stderr: tree.stderr,
    stdin: tree.stdin,
    exited: tree.exited,
    // Never the wrapper's group for TERM: unshare ignores it and the rank would not see it.
    signal: (sig) => (isUserSignal(sig) ? tree.signalProgram(sig) : tree.kill(sig)),
    // The pid namespace dies with its root: nothing can be left behind once the tree has exited.
    cleanup: () => {},
  }
}

export async function launchCriuRank(spec: LaunchSpec, env: Record<string, string>): Promise<RankProcess> {
  return treeRank(await launchUnderCriu({ argv: spec.argv, cwd: spec.cwd, env, stdin: spec.stdin }))
}

/** What the capture recorded for restore: criu-info.json (staged with the images), else ompx-rank.json. */
export function dumpInfoOf(dir: string): DumpInfo | null {
  for (const [file, pick] of [
    [CRIU_INFO_FILE, (j: Record<string, unknown>) => j],
    [RANK_META, (j: Record<string, unknown>) => j.info],
  ] as const) {
    const path = join(dir, file)
    if (!existsSync(path)) continue
    try {
      const info = pick(JSON.parse(readFileSync(path, 'utf8'))) as DumpInfo | undefined
      if (info && Array.isArray(info.fds)) return info
    } catch {
      // Unreadable: try the other one.
    }
  }
  return null
}

/** Bring a rank back from its images in `dir`. Throws "rank R on node N: <why, with the criu log line>". */
export async function restoreCriuRank(spec: LaunchSpec, dir: string, opts: CriuParams): Promise<RankProcess> {
  const where = `rank ${spec.proc.rank} on node ${spec.proc.node}`
  const info = dumpInfoOf(dir)
  if (!info) throw new Error(`${where}: no crs criu metadata in ${dir} (${CRIU_INFO_FILE}): the snapshot was not taken with crs criu`)
  try {
    const tree = await restoreTree({ criu: findCriu(opts.path), dir, info, stdin: spec.stdin, logLevel: opts.logLevel })
    return treeRank(tree)
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`)
  }
}
