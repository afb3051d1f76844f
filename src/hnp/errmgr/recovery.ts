/**
 * Automatic recovery (ompx run --enable-recovery): after a failure ended the job, decide whether
 * and how to start it again — from the last finished snapshot, verified, on the nodes still
 * alive (re-mapped when a node is gone), after the recovery delay.
 */
import { errorMessage } from '../../errors'
import type { AppContext, NodeInfo, ProcInfo } from '../../runtime/job'
import type { VerifyMode } from '../../sstore/checksum'
import { GlobalSnapshot } from '../../sstore/global-snapshot'
import type { RestartImages } from '../snapc/job-coordinator'

export interface RecoveryInput {
  /** Why the job ended ("rank 2 exited with status 9", "node n2 lost"). */
  failure: string
  /** Restarts already made. */
  restarts: number
  settings: { maxRestarts: number; delaySec: number }
  /** The job's global snapshot. */
  snapshot: { globalDir: string; ref: string }
  /** The checksum check to run on the snapshot (sstore_base_verify); throws on a bad setting. */
  verifyMode(): VerifyMode
  apps: AppContext[]
  procs: ProcInfo[]
  /** The allocation's nodes, and which of them still have a daemon. */
  nodes: NodeInfo[]
  alive(node: string): boolean
  /** Map the apps onto fewer nodes (oversubscribing if need be). */
  remap(nodes: NodeInfo[], apps: AppContext[]): ProcInfo[]
  say(msg: string): void
}

export interface RecoveryStep {
  procs: ProcInfo[]
  restart: RestartImages
  ref: string
}

export async function recoveryPlan(r: RecoveryInput): Promise<RecoveryStep | null> {
  const { maxRestarts, delaySec } = r.settings
  const { globalDir, ref } = r.snapshot
  if (r.restarts >= maxRestarts) {
    r.say(`${r.failure}; not recovering: --max-restarts ${maxRestarts} reached`)
    return null
  }
  let snap: GlobalSnapshot | undefined
  let seq
  try {
    snap = GlobalSnapshot.tryOpen(globalDir, ref)
    seq = snap?.latest()
    if (snap && seq) await snap.verify(seq.seq, r.verifyMode())
  } catch (err) {
    r.say(`${r.failure}; cannot recover: ${errorMessage(err)}`)
    return null
  }
  if (!snap || !seq) {
    r.say(`${r.failure}; no snapshot to recover from yet, so the job ends`)
    return null
  }
  const alive = r.nodes.filter((n) => r.alive(n.name))
  let procs = r.procs
  let where = ''
  if (!procs.every((p) => r.alive(p.node))) {
    if (alive.length === 0) {
      r.say(`${r.failure}; cannot recover: no node is left`)
      return null
    }
    // Fewer nodes than before: the ranks must fit on what is left, sharing slots if need be.
    const apps = r.apps.map((a) => ({ ...a, np: procs.filter((p) => p.app === a.index).length }))
    procs = r.remap(alive, apps)
    where = ` on ${alive.map((n) => n.name).join(',')}`
  }
  r.say(`${r.failure}; restarting the job from snapshot seq ${seq.seq} of ${ref}${where} (restart ${r.restarts + 1} of ${maxRestarts})`)
  await Bun.sleep(delaySec * 1000)
  const s = snap
  return { procs, ref, restart: { seq, rankDir: (rank) => s.rankDir(seq.seq, rank) } }
}
