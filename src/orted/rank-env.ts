/**
 * The one writer of a rank's environment, on the rank's node: the node's own environment, the
 * app context's -x variables, the job's identity (OMPI_COMM_WORLD_*, OMPX_*) as the HNP sent it,
 * and what only the node knows: the job's session directory here and the local coordinator's
 * socket, token and restart directory, and how to reach the node's PMI server (docs/pmi.md).
 */
import type { JobIdentity, LaunchSpec } from '../node/contract'

/** What the node's local coordinator gives a rank (see LocalSnapc.rankLink). */
export interface CoordinatorLink {
  socket: string
  token: string
  /** Set when the rank restarts from an image: where it is on this node. */
  restartDir?: string
  /** The restart is a migration: the rank moved here while its job ran on. */
  migrated?: boolean
}

/** How a rank reaches its node's PMI server: the fd it inherits, or a port and an id. */
export type PmiLink = { fd: number } | { port: string; id: number }

/** Variables of our own that must never leak into ranks (they describe this process, not the rank). */
const STRIP = ['OMPX_LOG_LEVEL_INTERNAL']

/**
 * Inside a Slurm task (the daemon srun started), the node's Slurm variables stay (SLURMD_NODENAME,
 * SLURM_JOB_ID, SLURM_NODEID, the step), but the per-task ones describe the daemon, not the rank:
 * they are rewritten to what `srun -n <size>` would give this rank, so a program that reads
 * SLURM_PROCID (as many do to find their rank) sees the rank, not its daemon's index.
 */
function slurmTaskVars(env: Record<string, string>, spec: LaunchSpec, job: JobIdentity): void {
  if (env.SLURM_JOB_ID === undefined || env.SLURM_PROCID === undefined) return
  Object.assign(env, {
    SLURM_PROCID: String(spec.proc.rank),
    SLURM_LOCALID: String(spec.proc.localRank),
    SLURM_NTASKS: String(job.size),
    SLURM_NPROCS: String(job.size),
  })
  // The daemon's pid and its step's task ids: meaningless for the rank.
  delete env.SLURM_TASK_PID
  delete env.SLURM_GTIDS
}

export function rankEnv(
  base: Record<string, string | undefined>,
  spec: LaunchSpec,
  job: JobIdentity,
  node: { sessionDir: string; coordinator: CoordinatorLink; pmi?: PmiLink },
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !STRIP.includes(k)) env[k] = v
  slurmTaskVars(env, spec, job)
  Object.assign(env, spec.appEnv)
  const { proc } = spec
  const rank = String(proc.rank)
  Object.assign(env, {
    OMPI_COMM_WORLD_RANK: rank,
    OMPI_COMM_WORLD_SIZE: String(job.size),
    OMPI_COMM_WORLD_LOCAL_RANK: String(proc.localRank),
    OMPI_COMM_WORLD_LOCAL_SIZE: String(proc.localSize),
    OMPI_COMM_WORLD_NODE_RANK: String(proc.nodeRank),
    OMPI_UNIVERSE_SIZE: String(job.universeSize),
    OMPX_JOBID: job.jobid,
    OMPX_RANK: rank,
    OMPX_SIZE: String(job.size),
    OMPX_NODE: proc.node,
    OMPX_APP: String(proc.app),
    OMPX_SESSION_DIR: node.sessionDir,
    OMPX_COORD_SOCK: node.coordinator.socket,
    OMPX_COORD_TOKEN: node.coordinator.token,
  })
  if (node.pmi) {
    // What MPICH's PMI client reads (and Hydra sets); PMI_APPNUM is the rank's MPMD app context.
    Object.assign(env, { PMI_RANK: rank, PMI_SIZE: String(job.size), PMI_APPNUM: String(proc.app) })
    if ('fd' in node.pmi) env.PMI_FD = String(node.pmi.fd)
    else Object.assign(env, { PMI_PORT: node.pmi.port, PMI_ID: String(node.pmi.id) })
  }
  const restart = node.coordinator.restartDir
  if (restart !== undefined) Object.assign(env, { OMPX_RESTART: '1', OMPX_RESTART_DIR: restart })
  if (node.coordinator.migrated) env.OMPX_MIGRATED = '1'
  return env
}
