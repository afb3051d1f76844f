/**
 * crs "criu": transparent checkpoint/restart of unmodified programs with CRIU (issue #5). A rank
 * is a process tree in its own pid namespace (src/criu/launch.ts); a checkpoint is a `criu dump`
 * of that tree into the rank's snapshot directory; a restart is src/criu/restore.ts.
 *
 * This plugin is the capture side the coordinated checkpoint calls. The daemon also needs, from
 * src/criu (re-exported below so it has one import): launchUnderCriu to start ranks when crs
 * criu is selected, restoreTree to bring them back, criuParams to read the options.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findCriu } from './binary'
import { dumpTree } from './dump'
import { launchToolsProblem, treeRootOf } from './launch'
import { CRIU_PARAMS, criuParams, type CriuParams } from './params'
import { privilegeProblem } from './privileges'
import type { CaptureRequest, CaptureResult, HostApi } from '../../../src/plugins/types'
import { definePlugin } from '../../../src/plugins/types'

export { launchUnderCriu, restoreTree, treeRootOf, type CriuTree, type DumpInfo, type TreeExit } from './lib'
export { criuParams } from './params'

/**
 * What restore needs (the DumpInfo), written next to the images at capture: it is checksummed and
 * staged with them, so a node restoring a rank finds it without the snapshot's global metadata.
 */
export const CRIU_INFO_FILE = 'criu-info.json'

/** Why crs criu cannot work on this node, or null. Cached: it runs `criu check` once. */
let verdict: { key: string; why: string | null } | undefined
export function criuUnavailable(path: string | undefined): string | null {
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
export function dumpMode(options: string[]): { leaveRunning: boolean; leaveStopped: boolean } {
  if (options.includes('term')) return { leaveRunning: false, leaveStopped: false }
  if (options.includes('stop')) return { leaveRunning: false, leaveStopped: true }
  return { leaveRunning: true, leaveStopped: false }
}

export async function captureRank(req: CaptureRequest, opts: CriuParams, Actionable: HostApi['ActionableError']): Promise<CaptureResult> {
  const where = `rank ${req.rank} on node ${req.node}`
  try {
    const criu = findCriu(opts.path)
    const mode = dumpMode(req.options)
    // req.pid is the tree root the daemon reports (treeRootOf also accepts the wrapper's pid).
    const info = await dumpTree({
      ...opts,
      criu,
      pid: treeRootOf(req.pid),
      dir: req.dir,
      ...mode,
    })
    writeFileSync(join(req.dir, CRIU_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`)
    return { info: info as unknown as Record<string, unknown> }
  } catch (e) {
    // CriuError messages already hold criu's own line and the log path.
    throw new Actionable(`crs criu: checkpoint of ${where} failed: ${(e as Error).message}`)
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
    capture: (req) => captureRank(req, options(), Actionable),
  }
})
