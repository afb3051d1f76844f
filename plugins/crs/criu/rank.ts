/**
 * Ranks of a job with crs `criu` (docs/criu.md): each is a process tree in its own pid namespace,
 * launched by launchUnderCriu or brought back by restoreTree from the rank's images, and handed
 * to the daemon as a RankProcess exactly like a spawned rank.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RankRestore, RankStart } from '../../../src/plugins/types'
import { isUserSignal, type RankProcess } from '../../../src/runtime/rank-process'
import { sessionRoot } from '../../../src/runtime/session'
import { readRankMeta } from '../../../src/sstore/local-snapshot'
import { findCriu } from './binary'
import type { DumpInfo } from './dump'
import { rememberCwd } from './files-capture'
import { restoreFiles, withLeadingLines } from './files-restore'
import { launchUnderCriu } from './launch'
import { CriuError, withHint } from './log'
import type { CriuParams } from './params'
import { continueTree, criuLetGo, restoreTree } from './restore'
import type { CriuTree } from './tree'

/**
 * What restore needs (the DumpInfo), written next to the images at capture: it is checksummed and
 * staged with them, so a node restoring a rank finds it without the snapshot's global metadata.
 */
export const CRIU_INFO_FILE = 'criu-info.json'

/** The daemon's handle of a tree; `notes`: lines shown ahead of the rank's stderr (restore warnings). */
function treeRank(tree: CriuTree, cwd: string | undefined, notes: string[] = []): RankProcess {
  rememberCwd(tree.pid, cwd, tree.exited)
  return {
    pid: tree.pid,
    // Killing the wrapper (unshare / criu restore) kills the tree; the root's group is the rank.
    groups: [tree.wrapperPid, tree.pid],
    stdout: tree.stdout,
    stderr: withLeadingLines(tree.stderr, notes),
    stdin: tree.stdin,
    exited: tree.exited,
    // Never the wrapper's group for TERM: unshare ignores it and the rank would not see it.
    signal: (sig) => (isUserSignal(sig) ? tree.signalProgram(sig) : tree.kill(sig)),
    // The pid namespace dies with its root: nothing can be left behind once the tree has exited.
    cleanup: () => {},
  }
}

export async function launchCriuRank(req: RankStart, opts: CriuParams): Promise<RankProcess> {
  return treeRank(await launchUnderCriu({ argv: req.argv, cwd: req.cwd, env: req.env, stdin: req.stdin, privateMounts: opts.privateMounts }), req.cwd)
}

/** What the capture recorded for restore: criu-info.json (staged with the images), else ompx-rank.json. */
async function dumpInfoOf(dir: string): Promise<DumpInfo | null> {
  const usable = (info: unknown): info is DumpInfo => Array.isArray((info as DumpInfo | undefined)?.fds)
  try {
    const info: unknown = JSON.parse(readFileSync(join(dir, CRIU_INFO_FILE), 'utf8'))
    if (usable(info)) return info
  } catch {
    // Missing or unreadable: the rank's metadata holds the same.
  }
  const meta = await readRankMeta(dir).catch(() => null)
  return usable(meta?.info) ? meta.info : null
}

/**
 * Bring a rank back from its images in `req.imageDir`. criu writes (its log, pidfile, stats) only
 * in `req.workDir`, a node-local directory of the restarting job: the snapshot may be read-only or
 * shared, and stays as it was sealed. Throws "rank R on node N: <why, with the criu log line>".
 */
export async function restoreCriuRank(req: RankRestore, opts: CriuParams): Promise<RankProcess> {
  const where = `rank ${req.rank} on node ${req.node}`
  const dir = req.imageDir
  const info = await dumpInfoOf(dir)
  if (!info) throw new Error(`${where}: no crs criu metadata in ${dir} (${CRIU_INFO_FILE}): the snapshot was not taken with crs criu`)
  // The rank's files go back before criu reopens them (files-restore.ts).
  const files = await restoreFiles({ dir, jobid: req.jobid, rank: req.rank, node: req.node }).catch((e: Error) => {
    throw new Error(`${where}: ${e.message}`)
  })
  let tree: CriuTree
  try {
    // Images still being verified: restored stopped, and continued only once they all matched.
    const leaveStopped = req.verified !== undefined
    tree = await restoreTree({ criu: findCriu(opts.path), dir, workDir: req.workDir, info, stdin: req.stdin, logLevel: opts.logLevel, leaveStopped })
  } catch (e) {
    const changed = files.changed.length ? ` (changed since the checkpoint: ${files.changed.join(', ')}; see crs_criu_capture_files)` : ''
    throw new Error(`${where}: ${withHint(keptLog(e as Error, `job-${req.jobid}.rank_${req.rank}.${Date.now()}.restore.log`))}${changed}`)
  }
  if (req.verified) {
    try {
      await req.verified
    } catch (e) {
      // Never continued: the tree dies stopped, having run nothing from a bad image; once criu
      // let go of it (criu waits for its traced tasks), and criu with it if it is still there.
      await criuLetGo(tree.pid)
      tree.kill('SIGKILL')
      try {
        process.kill(-tree.wrapperPid, 'SIGKILL')
      } catch {} // criu has exited already: the usual case
      await tree.exited
      throw e
    }
    await continueTree(tree.pid)
  }
  return treeRank(tree, req.cwd, files.warnings)
}

/**
 * The directory of a criu log goes right after a failure: a restore's workDir when the job ends
 * on the node (at once for a failed restore), a dump's rank dir when the failed checkpoint is
 * discarded. The log the message names is copied to `<session dir>/logs/<name>` first (the
 * user's 0700 session directory, which outlives jobs), and the message names the copy.
 */
export function keptLog(e: Error, name: string): string {
  if (!(e instanceof CriuError) || !e.logPath || !existsSync(e.logPath)) return e.message
  try {
    const dir = join(sessionRoot(), 'logs')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const kept = join(dir, name)
    copyFileSync(e.logPath, kept)
    return e.message.split(e.logPath).join(kept)
  } catch {
    return e.message
  }
}
