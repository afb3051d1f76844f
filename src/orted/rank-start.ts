/**
 * Starting one rank on a node (LocalDaemon's launch, local-daemon.ts): through its CRS, as a
 * fresh launch or a restore from its checkpoint image, with its app-socket link, its PMI link and
 * its environment. Kept apart from the daemon, which tracks ranks once they run.
 */
import type { JobIdentity, LaunchSpec } from '../node/contract'
import type { Registry } from '../plugins/registry'
import type { CrsPlugin } from '../plugins/types'
import type { RankProcess } from '../runtime/rank-process'
import { rankEnv, type PmiLink } from './rank-env'
import type { LocalSnapc } from './snapc/local-snapc'
import { PMI_CHILD_FD, type PmiServer } from './pmi/pmi-server'

/** The parts of a node's job that starting a rank uses. */
export interface RankStarter {
  node: string
  /** The job's session directory on this node: the app socket lives here. */
  sessionDir: string
  registry: Registry
  snapc: LocalSnapc
  pmi: PmiServer
}

/** Start one rank through its CRS: a fresh launch, or a restore from its image. */
export async function startRank(s: RankStarter, job: JobIdentity, spec: LaunchSpec, verified?: Promise<void>): Promise<RankProcess> {
  const rank = spec.proc.rank
  const coordinator = await s.snapc.rankLink(rank, spec.restart)
  const crs = crsOf(s.registry, spec)
  const pmi = await pmiLink(s.pmi, job, rank, crs)
  const env = rankEnv(process.env, spec, job, { sessionDir: s.sessionDir, coordinator, pmi })
  const req = { jobid: job.jobid, rank, node: s.node, argv: spec.argv, cwd: spec.cwd, env, stdin: spec.stdin, pmiFd: pmi && 'fd' in pmi }
  let proc: RankProcess
  if (coordinator.restartDir === undefined) proc = await crs.launch(req)
  else {
    // A CRS that cannot hold the rank restores only from verified images.
    if (!crs.restoresBeforeVerified) await verified
    const held = crs.restoresBeforeVerified && verified ? { verified } : {}
    proc = await crs.restore({ ...req, imageDir: coordinator.restartDir, workDir: s.snapc.localRestartDir(rank), ...held })
  }
  if (proc.pmiFd !== undefined) await s.pmi.adoptFd(rank, proc.pmiFd)
  return proc
}

/**
 * How the rank reaches the PMI server: fd mode (the default) when its CRS passes the
 * socketpair, else port mode (asked for with pmi_mode=port, or a CRS such as criu whose
 * launcher owns the rank's fds).
 */
async function pmiLink(pmi: PmiServer, job: JobIdentity, rank: number, crs: CrsPlugin): Promise<PmiLink | undefined> {
  if (!job.pmi) return undefined
  if (job.pmi.mode === 'fd' && crs.passesPmiFd) return { fd: PMI_CHILD_FD }
  return { port: await pmi.listen(), id: pmi.issueId(rank) }
}

/** The CRS a rank's launch names (the registry's default when it names none). */
export function crsOf(registry: Registry, spec: LaunchSpec): CrsPlugin {
  return registry.select('crs', spec.crs || undefined)
}
