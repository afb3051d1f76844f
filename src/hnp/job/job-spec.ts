/**
 * What a job is, as the HNP hands it to JobRunner (job-runner.ts): the spec of one job and its
 * dpm traffic, and the small pure helpers the runner words its answers with. Kept apart so the
 * runner holds only the job's live state and reactions (launch-plan.ts builds its launches).
 */
import type { RunRequest } from '../../args/mpirun'
import type { NodeHandle, RankExit } from '../../node/contract'
import type { AppContext, ProcInfo } from '../../runtime/job'
import type { MessageOf } from '../../wire/messages'
import type { OutputOptions, OutputSink } from '../output/output-router'
import type { CoordinatorSpec } from '../snapc/job-coordinator'

/** A rank's request to the HNP's dpm (src/hnp/dpm): the name service, or a spawn. */
export type DpmRequest = MessageOf<'orted.name'> | MessageOf<'orted.spawn'>
/** The dpm's answer, sent back to the rank's node: the port looked up or the child's jobid (value), or why not. */
export type DpmReply = { ok: boolean; value?: string; text?: string }

export interface JobSpec {
  jobid: string
  apps: AppContext[]
  procs: ProcInfo[]
  sessionDir: string
  output: OutputOptions
  stdin: RunRequest['stdin']
  timeoutSec?: number
  errmgrContinue: boolean
  killGraceSec: number
  /** pmi_mode: how MPI ranks reach their node's PMI server (docs/pmi.md). */
  pmiMode: 'fd' | 'port'
  quiet: boolean
  /** How to reach each node that has ranks. */
  nodes: Map<string, NodeHandle>
  /** Output sink; defaults to this process's stdout/stderr. */
  router?: OutputSink
  /** Called with each rank's pid once its node reports the launch. */
  onLaunched?(rank: number, pid: number): void
  onRankExit?(e: RankExit): void
  /** A migrated rank now runs on `node`. */
  onMoved?(rank: number, node: string): void
  /** Start daemons on nodes of the allocation that have none yet (a migration's spare targets). */
  addNodes?(names: string[]): Promise<void>
  /** Checkpoint/restart set-up of the job (CRS, snapshot target, restart images). */
  cr: CoordinatorSpec
  /** Prefix of our messages: the command the user typed ("ompx run", "ompx restart"). */
  who?: string
  /** A rank's PMI asked for the name service or a spawn (src/hnp/dpm); `answer` goes to its node. */
  dpm(msg: DpmRequest, answer: (r: DpmReply) => void): void
  /** A spawned job: its parent's preput values, in every node's PMI kv space from the start. */
  pmiPreput?: [string, string][]
}

/** Exit status for a job killed by --timeout (ETIMEDOUT, as the issue and scripts expect). */
export const TIMEOUT_STATUS = 110

/** A rank's dpm request to the HNP's dpm (spec.dpm); `deliver` takes the answer to the rank's node. */
export function askDpm(spec: JobSpec, m: DpmRequest, deliver: (answer: ReturnType<typeof dpmAnswer>) => void): void {
  spec.dpm({ ...m, jobid: spec.jobid }, (r) => deliver(dpmAnswer(spec.jobid, m, r)))
}

/** The message that carries the dpm's answer to `m` back to the asking rank's node. */
function dpmAnswer(jobid: string, m: DpmRequest, { ok, value, text }: DpmReply): MessageOf<'hnp.name'> | MessageOf<'hnp.spawned'> {
  return m.t === 'orted.name' ? { t: 'hnp.name', jobid, rank: m.rank, id: m.id, ok, port: value, text } : { t: 'hnp.spawned', jobid, rank: m.rank, id: m.id, ok, child: value, text }
}

/** "1 rank", "3 other ranks". */
export function ranks(n: number, adj = ''): string {
  return `${n} ${adj}rank${n === 1 ? '' : 's'}`
}
