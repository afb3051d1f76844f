/**
 * What JobRunner (job-runner.ts) hands each node before its ranks start: the per-node launch
 * specs of a job, the job-wide header (size, PMI), and for a restart, each rank's image, the
 * staging of images to nodes that cannot read the global store, and the output a checkpoint
 * carried over. Kept apart from the runner, which only reacts to the running job.
 */
import type { JobIdentity, LaunchSpec, NodeJob } from '../../node/contract'
import type { ProcInfo } from '../../runtime/job'
import { processMapping } from '../../runtime/process-mapping'
import type { OutputSink } from '../output/output-router'
import type { JobCoordinator } from '../snapc/job-coordinator'
import type { JobSpec } from './job-spec'
import { readsStdin } from './stdin'

/** Each node's launches of the job, its ranks in order (restart images are added by the runner). */
export function launchesByNode(spec: JobSpec): Map<string, LaunchSpec[]> {
  const byNode = new Map<string, LaunchSpec[]>()
  for (const proc of spec.procs) {
    const app = spec.apps[proc.app]!
    const list = byNode.get(proc.node) ?? []
    list.push({ proc, argv: app.argv, cwd: app.cwd, appEnv: app.env, stdin: readsStdin(spec.stdin, proc.rank), crs: spec.cr.crs })
    byNode.set(proc.node, list)
  }
  return byNode
}

/** The job-wide part of every node's launch: the job's size and how its ranks reach PMI. */
export function launchHeader(spec: JobSpec): JobIdentity {
  const size = spec.procs.length
  const pmi = { mode: spec.pmiMode, processMapping: processMapping(spec.procs.map((p) => p.node)), ...(spec.pmiPreput ? { preput: spec.pmiPreput } : {}) }
  return { jobid: spec.jobid, size, universeSize: size, pmi }
}

/** The runner's side of a restart's preparation. */
interface RestartHooks {
  /** The job's share of a node, attached on first use. */
  node(name: string): NodeJob
  daemons: Map<string, NodeJob>
  router: OutputSink
  /** The images failed verification: end the restart. */
  badImages(err: unknown): void
}

/** A restart's images into `byNode`'s launches, staged where needed, and the carried output replayed. */
export async function prepareRestart(procs: ProcInfo[], byNode: Map<string, LaunchSpec[]>, coord: JobCoordinator, hooks: RestartHooks): Promise<void> {
  for (const [node, specs] of byNode) {
    const daemon = hooks.node(node)
    for (const s of specs) s.restart = coord.restartOf(s.proc, daemon)
  }
  // Images that fail verification end the restart in one line, as a refused snapshot did
  // before anything started; the held ranks are ended by their nodes, never continued.
  coord.verified?.catch((err) => hooks.badImages(err))
  // Restarted ranks on nodes that cannot read the global store get their images first.
  await coord.stageImages(hooks.daemons)
  // A line a checkpoint cut: its first part comes out before the restarted rank's first bytes.
  for (const proc of procs) {
    const tail = coord.carriedTail(proc.rank, 'restart')
    for (const stream of ['stdout', 'stderr'] as const) if (tail?.[stream]) void hooks.router.data(proc.rank, stream, Buffer.from(tail[stream], 'base64'))
  }
}
