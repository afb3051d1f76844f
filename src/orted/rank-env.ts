/** The environment every rank starts with: ours, the app's -x variables, and the job's identity. */
import type { AppContext, ProcInfo } from '../runtime/job'

export interface JobIdentity {
  jobid: string
  size: number
  universeSize: number
  sessionDir: string
}

/** Variables of our own that must never leak into ranks (they describe this process, not the rank). */
const STRIP = ['OMPX_LOG_LEVEL_INTERNAL']

export function rankEnv(
  base: Record<string, string | undefined>,
  app: AppContext,
  proc: ProcInfo,
  job: JobIdentity,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !STRIP.includes(k)) env[k] = v
  Object.assign(env, app.env)
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
    OMPX_APP: String(app.index),
    OMPX_SESSION_DIR: job.sessionDir,
  })
  return env
}
