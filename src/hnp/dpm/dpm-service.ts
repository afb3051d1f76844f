/**
 * The HNP's answers to ranks' dpm requests (`orted.name`, `orted.spawn`, from the nodes' PMI
 * servers): the name service (name-service.ts, one per HNP) and spawn (spawn.ts: plan the child
 * job, start daemons where it lands, start it through the job lifecycle). A spawn is answered
 * once the child job has been started, as Hydra answers `spawn_result` after launching; why a
 * spawn failed is also said on the run's stderr, since MPI libraries only report that it failed.
 */
import { errorMessage } from '../../errors'
import type { AppContext, ProcInfo } from '../../runtime/job'
import type { MessageOf } from '../../wire/messages'
import type { Hnp } from '../hnp'
import type { DpmReply, DpmRequest } from '../job/job-spec'
import type { JobFamily } from './family'
import type { NameResult } from './name-service'
import { planSpawn, type ChildPlan, type SpawnSettings } from './spawn'

export interface DpmContext {
  hnp: Hnp
  jobid: string
  apps: AppContext[]
  procs: ProcInfo[]
  /** How children are started: the allocation and plugins of the job's run. */
  spawn: SpawnSettings
  family: JobFamily
  say(text: string): void
  /** Start the planned child job (through the lifecycle); returns its jobid. */
  start(plan: ChildPlan): string
}

export function serveDpm(ctx: DpmContext, m: DpmRequest, answer: (r: DpmReply) => void): void {
  if (m.t === 'orted.spawn') return spawn(ctx, m, answer)
  const names = ctx.hnp.names
  const r: NameResult =
    m.op === 'publish' ? names.publish(ctx.jobid, m.service, m.port ?? '') : m.op === 'unpublish' ? names.unpublish(ctx.jobid, m.service) : names.lookup(m.service)
  answer(r.ok ? { ok: true, value: r.port } : { ok: false, text: r.why })
}

function spawn(ctx: DpmContext, m: MessageOf<'orted.spawn'>, answer: (r: DpmReply) => void): void {
  const settings = ctx.spawn
  const parentApp = ctx.apps[ctx.procs[m.rank]?.app ?? -1]
  if (!parentApp) return answer({ ok: false, text: `rank ${m.rank} is not a rank of job ${ctx.jobid}` })
  const refused = () => (ctx.family.ending || !ctx.family.has(ctx.jobid) ? `job ${ctx.jobid} is ending` : null)
  const work = (async () => {
    const before = refused()
    if (before) throw new Error(before)
    const plan = planSpawn(settings, parentApp, m)
    const nodes = new Set(plan.procs.map((p) => p.node))
    await ctx.hnp.startDaemons(settings.allocation.nodes.filter((n) => nodes.has(n.name)), settings.launcher)
    const after = refused()
    if (after) throw new Error(after)
    return ctx.start(plan)
  })()
  ctx.family.hold(work)
  work.then(
    (jobid) => answer({ ok: true, value: jobid }),
    (err) => {
      const why = errorMessage(err)
      ctx.say(`rank ${m.rank}: MPI_Comm_spawn failed: ${why}`)
      answer({ ok: false, text: why })
    },
  )
}
