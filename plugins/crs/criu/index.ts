/**
 * crs "criu": transparent checkpoint/restart of unmodified programs with CRIU (docs/criu.md). The
 * whole lifecycle lives in this folder: a rank is launched as a process tree in its own pid
 * namespace (launch.ts), captured by a `criu dump` of that tree into the rank's snapshot
 * directory (dump.ts), and restored on any node from those images (restore.ts); rank.ts turns
 * either tree into the RankProcess the node daemon drives. The files the rank writes are
 * recorded, or copied, beside the images (files-*.ts).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CaptureRequest, CaptureResult, HostApi } from '../../../src/plugins/types'
import { definePlugin } from '../../../src/plugins/types'
import { findCriu } from './binary'
import { dumpTree } from './dump'
import { dumpWithFiles } from './files-capture'
import { launchToolsProblem, privateDirOf, treeRootOf } from './launch'
import { CRIU_PARAMS, criuParams, type CriuParams } from './params'
import { privilegeProblem } from './privileges'
import { withHint } from './log'
import { CRIU_INFO_FILE, keptLog, launchCriuRank, restoreCriuRank } from './rank'

/** Why crs criu cannot work on this node, or null. Cached: it runs `criu check` once. */
let verdict: { key: string; why: string | null } | undefined
function criuUnavailable(path: string | undefined): string | null {
  const key = path ?? ''
  if (verdict?.key === key) return verdict.why
  let why = privilegeProblem() ?? launchToolsProblem()
  if (!why) {
    try {
      findCriu(path)
    } catch (e) {
      why = (e as Error).message
    }
  }
  verdict = { key, why }
  return why
}

/**
 * The checkpoint options map onto dump modes: `term` ends the rank (criu's default, the tree is
 * killed once dumped), `stop` leaves it stopped (--leave-stopped) for whoever continues it, and
 * otherwise it keeps running (--leave-running).
 */
function dumpMode(options: string[]): { leaveRunning: boolean; leaveStopped: boolean } {
  if (options.includes('term')) return { leaveRunning: false, leaveStopped: false }
  if (options.includes('stop')) return { leaveRunning: false, leaveStopped: true }
  return { leaveRunning: true, leaveStopped: false }
}

async function captureRank(req: CaptureRequest, opts: CriuParams, Actionable: HostApi['ActionableError']): Promise<CaptureResult> {
  const where = `rank ${req.rank} on node ${req.node}`
  try {
    const criu = findCriu(opts.path)
    // req.pid is the tree root the daemon reports (treeRootOf also accepts the wrapper's pid).
    const root = treeRootOf(req.pid)
    const files = { root, dir: req.dir, spec: opts.captureFiles, skipUnder: [privateDirOf(root)].filter((d): d is string => !!d) }
    const done = await dumpWithFiles(files, dumpMode(req.options), (mode) => dumpTree({ ...opts, criu, pid: root, dir: req.dir, ...mode }))
    const info = { ...done.info, files: done.files }
    writeFileSync(join(req.dir, CRIU_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`)
    return { info: info as unknown as Record<string, unknown> }
  } catch (e) {
    // CriuError messages hold criu's own line and the log path; the rank dir goes with the
    // failed checkpoint, so the message names a copy of the log that stays.
    const why = keptLog(e as Error, `rank_${req.rank}.${req.node}.${Date.now()}.dump.log`)
    throw new Actionable(`crs criu: checkpoint of ${where} failed: ${withHint(why)}`)
  }
}

export default definePlugin((host) => {
  const Actionable = host.ActionableError
  const options = (): CriuParams => {
    try {
      return criuParams((k) => host.param(k))
    } catch (e) {
      throw new Actionable(`crs criu: ${(e as Error).message}`)
    }
  }
  /** The options, once this node is known to be able to run criu ranks. */
  const usable = (): CriuParams => {
    const opts = options()
    const why = criuUnavailable(opts.path)
    if (why) throw new Actionable(`crs criu cannot run ranks here: ${why}`)
    return opts
  }
  return {
    kind: 'crs',
    name: 'criu',
    // Low: crs criu needs root and changes how ranks start, so it is only used when asked for.
    priority: 5,
    description: 'Transparent checkpoint/restart of unmodified programs with CRIU (needs root and a working criu)',
    params: CRIU_PARAMS,
    needsApp: false,
    notCheckpointable: () => {
      const why = criuUnavailable(host.param('crs_criu_path')?.trim() || undefined)
      return why ? `crs criu cannot checkpoint here: ${why}` : null
    },
    launch: async (req) => {
      return launchCriuRank(req, usable())
    },
    capture: (req) => captureRank(req, options(), Actionable),
    // criu dump without --leave-running kills the tree once its images are written.
    captureEndsRankOnTerm: true,
    restore: async (req) => restoreCriuRank(req, usable()),
    // criu restores the tree stopped (--leave-stopped) until the images are verified.
    restoresBeforeVerified: true,
    // criu writes every image once, through write()/splice(): finished ones are sealed early.
    writesImagesOnce: true,
  }
})
