/**
 * Ranks of a job with crs `criu` (docs/criu.md): each is a process tree in its own pid namespace,
 * launched by launchUnderCriu or brought back by restoreTree from the rank's images, and handed
 * to the daemon as a RankProcess exactly like a spawned rank.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CRIU_INFO_FILE, criuUnavailable } from './index'
import { findCriu } from './binary'
import type { DumpInfo } from './dump'
import { launchUnderCriu } from './launch'
import { criuParams, type CriuParams } from './params'
import { CriuError } from './log'
import { restoreTree } from './restore'
import { sessionRoot } from '../../../src/runtime/session'
import type { CriuTree } from './tree'
import { RANK_META } from '../../../src/sstore/types'
import type { LaunchSpec } from '../../../src/orted/local-daemon'
import { isUserSignal, type RankProcess } from '../../../src/runtime/rank-process'

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

/**
 * Bring a rank back from its images in `dir`. criu writes (its log, pidfile, stats) only in
 * `workDir`, a node-local directory of the restarting job: the snapshot may be read-only or
 * shared, and stays as it was sealed. Throws "rank R on node N: <why, with the criu log line>".
 */
export async function restoreCriuRank(spec: LaunchSpec, dir: string, workDir: string, opts: CriuParams): Promise<RankProcess> {
  const where = `rank ${spec.proc.rank} on node ${spec.proc.node}`
  const info = dumpInfoOf(dir)
  if (!info) throw new Error(`${where}: no crs criu metadata in ${dir} (${CRIU_INFO_FILE}): the snapshot was not taken with crs criu`)
  try {
    const tree = await restoreTree({ criu: findCriu(opts.path), dir, workDir, info, stdin: spec.stdin, logLevel: opts.logLevel })
    return treeRank(tree)
  } catch (e) {
    throw new Error(`${where}: ${keptLog(e as Error, spec)}`)
  }
}

/**
 * The workDir goes when the job ends on this node, which for a failed restore is at once: the
 * log the message names is copied to `<session dir>/logs/` first (the user's 0700 session
 * directory, which outlives jobs), and the message names the copy.
 */
function keptLog(e: Error, spec: LaunchSpec): string {
  if (!(e instanceof CriuError) || !e.logPath || !existsSync(e.logPath)) return e.message
  try {
    const dir = join(sessionRoot(), 'logs')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const kept = join(dir, `job-${spec.env.OMPX_JOBID ?? 'unknown'}.rank_${spec.proc.rank}.${Date.now()}.restore.log`)
    copyFileSync(e.logPath, kept)
    return e.message.split(e.logPath).join(kept)
  } catch {
    return e.message
  }
}
