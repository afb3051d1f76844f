/**
 * Automatic recovery (ompx run --enable-recovery): after a failure ended the job, decide whether
 * and how to start it again — from the last finished snapshot, verified, on the nodes still
 * alive (re-mapped when a node is gone), after the recovery delay.
 */
import { errorMessage } from '../../errors'
import { verifyModeParam } from '../../sstore/checksum'
import { GlobalSnapshot } from '../../sstore/global-snapshot'
import type { ProcInfo } from '../../runtime/job'
import type { Hnp } from '../hnp'
import type { LocalJob } from '../job/run-job'
import { mapJob } from '../mapping/map-job'
import type { CoordinatorSpec, RestartImages } from '../snapc/job-coordinator'

export interface RecoveryInput {
  hnp: Hnp
  job: LocalJob
  procs: ProcInfo[]
  failure: string
  restarts: number
  spec: CoordinatorSpec
  say(msg: string): void
}

export interface RecoveryStep {
  procs: ProcInfo[]
  restart: RestartImages
  ref: string
}

export async function recoveryPlan(r: RecoveryInput): Promise<RecoveryStep | null> {
  const { maxRestarts, delaySec } = r.job.cr.recovery!
  const { globalDir, ref } = r.spec.plan
  if (r.restarts >= maxRestarts) {
    r.say(`${r.failure}; not recovering: --max-restarts ${maxRestarts} reached`)
    return null
  }
  let snap: GlobalSnapshot | undefined
  let seq
  try {
    snap = GlobalSnapshot.tryOpen(globalDir, ref)
    seq = snap?.latest()
    if (snap && seq) await snap.verify(seq.seq, verifyModeParam((k) => r.job.params.get(k)))
  } catch (err) {
    r.say(`${r.failure}; cannot recover: ${errorMessage(err)}`)
    return null
  }
  if (!snap || !seq) {
    r.say(`${r.failure}; no snapshot to recover from yet, so the job ends`)
    return null
  }
  const alive = r.job.allocation.nodes.filter((n) => r.hnp.nodes.has(n.name))
  let procs = r.procs
  let where = ''
  if (!procs.every((p) => r.hnp.nodes.has(p.node))) {
    if (alive.length === 0) {
      r.say(`${r.failure}; cannot recover: no node is left`)
      return null
    }
    // Fewer nodes than before: the ranks must fit on what is left, sharing slots if need be.
    const apps = r.job.apps.map((a) => ({ ...a, np: procs.filter((p) => p.app === a.index).length }))
    procs = mapJob(r.job.registry, r.job.params, { ...r.job.allocation, nodes: alive, sequence: undefined }, apps, { oversubscribe: true })
    where = ` on ${alive.map((n) => n.name).join(',')}`
  }
  r.say(`${r.failure}; restarting the job from snapshot seq ${seq.seq} of ${ref}${where} (restart ${r.restarts + 1} of ${maxRestarts})`)
  await Bun.sleep(delaySec * 1000)
  const s = snap
  return { procs, ref, restart: { seq, rankDir: (rank) => s.rankDir(seq.seq, rank) } }
}
