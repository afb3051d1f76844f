/**
 * Jobs submitted to a persistent HNP (`ompx run --hnp ...`): map them onto the HNP's
 * allocation, run them on its daemons, stream their output back to the submitting client, and
 * end a job whose client went away (as if its mpirun had been killed).
 */
import { errorMessage } from '../../errors'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import type { Allocation, AppContext } from '../../runtime/job'
import type { Channel } from '../../wire/channel'
import type { MessageOf } from '../../wire/messages'
import { renderMap } from '../mapping/display-map'
import { ForwardSink } from '../output/forward-sink'
import type { Hnp } from '../hnp'
import type { JobFamily } from '../dpm/family'
import { startJob } from './lifecycle'
import { mapJob } from '../mapping/map-job'
import { preflightApp } from '../launch/preflight'
import { coordinatorSpec } from '../snapc/plan'

export interface SubmitContext {
  hnp: Hnp
  registry: Registry
  params: Params
  allocation: Allocation
  /** Starts daemons on nodes that have none (after a node loss, for a migration's target). */
  launcher: LauncherPlugin
}

export function serveSubmissions(ctx: SubmitContext): void {
  ctx.hnp.toolHandlers.push((ch) => {
    /** This client's jobs, each with the jobs it spawned: the client's signals go to all of them. */
    const mine = new Map<string, JobFamily>()
    ch.on('tool.submit', (m) => {
      runSubmitted(ctx, ch, m, mine).catch((err) => ch.send({ t: 'error', message: errorMessage(err) }))
    })
    ch.on('tool.signal', (m) => {
      const family = mine.get(m.jobid)
      const sig = m.signal as NodeJS.Signals
      if (!family) return
      if (sig === 'SIGINT' || sig === 'SIGTERM' || sig === 'SIGHUP') family.interrupt(sig)
      else family.signalAll(sig)
    })
    ch.onClose(() => {
      for (const family of mine.values()) family.interrupt('SIGHUP')
    })
  })
}

async function runSubmitted(
  ctx: SubmitContext,
  ch: Channel,
  m: MessageOf<'tool.submit'>,
  mine: Map<string, JobFamily>,
): Promise<void> {
  const { hnp, registry, params, allocation } = ctx
  const apps: AppContext[] = m.apps.map((a, index) => ({ index, np: a.np, argv: a.argv, env: a.env, cwd: a.cwd }))
  const procs = mapJob(registry, params, allocation, apps, { mapBy: m.options.mapBy, oversubscribe: m.options.oversubscribe })
  for (const app of apps) preflightApp(app, app.env)
  const jobid = hnp.newJobId()
  ch.send({ t: 'hnp.submitted', jobid, ranks: procs.length })
  if (m.options.displayMap) ch.send({ t: 'hnp.notice', jobid, text: renderMap(jobid, allocation, apps, procs) })
  const { family, done } = startJob(hnp, {
    jobid,
    apps,
    procs,
    output: { jobid, tag: false, timestamp: false, mergeStderr: false },
    router: new ForwardSink(ch, jobid),
    stdin: { kind: 'none' },
    timeoutSec: m.options.timeoutSec,
    errmgrContinue: m.options.errmgrContinue,
    killGraceSec: params.getNumber('kill_grace') ?? 5,
    pmiMode: params.get('pmi_mode') === 'port' ? 'port' : 'fd',
    quiet: false,
    addNodes: (names) => hnp.startDaemons(allocation.nodes.filter((n) => names.includes(n.name)), ctx.launcher),
    cr: coordinatorSpec({ registry, params, jobid, apps, procs, allocation, launcher: params.get('launcher') ?? '' }),
    // Spawned children run in this HNP too; their output goes to the same client.
    spawn: { registry, params, allocation, launcher: ctx.launcher, router: (child) => new ForwardSink(ch, child) },
  })
  mine.set(jobid, family)
  const status = await done
  mine.delete(jobid)
  ch.send({ t: 'hnp.job-exit', jobid, status })
}
