/**
 * One job run by an HNP of its own — `ompx run` and `ompx restart` both end here: start the HNP
 * and the node daemons, run the job, and (with --enable-recovery) start it again from its last
 * snapshot when a rank or a node dies, on the nodes that are left.
 */
import type { RunRequest } from '../../args/mpirun'
import { ActionableError } from '../../errors'
import type { Params } from '../../params/params'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import type { Allocation, AppContext, ProcInfo } from '../../runtime/job'
import type { CrSettings } from '../../args/cr-options'
import { renderMap } from '../mapping/display-map'
import { Hnp } from '../hnp'
import { hnpAddress } from '../allocation/allocate'
import type { OutputOptions } from '../output/output-router'
import { startJob, type StartedJob } from './lifecycle'
import { installJobSignals } from './signals'
import { coordinatorSpec } from '../snapc/plan'
import type { RestartImages } from '../snapc/job-coordinator'
import { recoveryPlan } from '../errmgr/recovery'
import { mapJob } from '../mapping/map-job'
import { verifyModeParam } from '../../sstore/checksum'
import { SignalCheckpoint } from '../snapc/signal-checkpoint'
import { checkpointSignal } from '../../params/core'
import { writeStderr } from '../../tty'

export interface LocalJob {
  registry: Registry
  params: Params
  allocation: Allocation
  launcher: LauncherPlugin
  apps: AppContext[]
  procs: ProcInfo[]
  output: Omit<OutputOptions, 'jobid'>
  stdin: RunRequest['stdin']
  timeoutSec?: number
  displayMap: boolean
  quiet: boolean
  cr: CrSettings
  /** Restart: the snapshot to continue and the images to start from. */
  ref?: string
  restart?: RestartImages
  /** Where that snapshot lives, when not in sstore_base_global_snapshot_dir. */
  globalDir?: string
  /** The command, for message prefixes (default "ompx run"). */
  who?: string
}

export async function runLocalJob(job: LocalJob): Promise<number> {
  const { registry, params, allocation } = job
  const hnp = await Hnp.start({ registry, params, address: hnpAddress(params, allocation.nodes), tolerateNodeLoss: job.cr.recovery !== undefined })
  let current: StartedJob | undefined
  let interrupted = false
  const who = job.who ?? 'ompx run'
  const onSignal = checkpointSignal(params) ? new SignalCheckpoint(hnp.coordinators, params, (m) => writeStderr(`${who}: ${m}\n`)) : undefined
  hnp.onCheckpointSignal = onSignal && ((from) => onSignal.trigger(from))
  installJobSignals(
    {
      // The job and the jobs it spawned (MPI_Comm_spawn) hear the user's signals alike.
      interrupt: (sig) => (current ? current.family.interrupt(sig) : void (interrupted = true)),
      signalAll: (sig) => current?.family.signalAll(sig),
    },
    onSignal && { signal: onSignal.signal, take: () => onSignal.trigger(who) },
  )
  try {
    // Signals during daemon start-up end the run; the finally block stops what was started.
    const early = () => hnp.shutdown().then(() => process.exit(130))
    process.once('SIGINT', early).once('SIGTERM', early)
    let jobid = hnp.newJobId()
    if (job.displayMap) process.stdout.write(renderMap(jobid, allocation, job.apps, job.procs))
    await hnp.startDaemons(allocation.nodes.filter((n) => job.procs.some((p) => p.node === n.name)), job.launcher)
    process.off('SIGINT', early).off('SIGTERM', early)

    let { procs, restart, ref } = job
    for (let restarts = 0; ; restarts++) {
      const spec = coordinatorSpec({ registry, params, jobid, apps: job.apps, procs, allocation, launcher: job.launcher.name, ref, restart, intervalSec: job.cr.intervalSec, globalDir: job.globalDir })
      if ((job.cr.intervalSec || job.cr.recovery || onSignal) && restarts === 0) requireCheckpointable(registry, spec.crs)
      const started = startJob(hnp, {
        jobid,
        apps: job.apps,
        procs,
        output: { ...job.output, jobid },
        stdin: restarts === 0 ? job.stdin : { kind: 'none' },
        timeoutSec: job.timeoutSec,
        errmgrContinue: params.getBool('errmgr_continue'),
        killGraceSec: params.getNumber('kill_grace') ?? 5,
        pmiMode: params.get('pmi_mode') === 'port' ? 'port' : 'fd',
        quiet: job.quiet,
        cr: spec,
        who: job.who,
        addNodes: (names) => hnp.startDaemons(allocation.nodes.filter((n) => names.includes(n.name)), job.launcher),
        spawn: { registry, params, allocation, launcher: job.launcher },
      })
      current = started
      const status = await started.done
      const { failure } = started.runner
      if (!job.cr.recovery || !failure || interrupted || started.runner.interrupted) return status
      const next = await recoveryPlan({
        failure,
        restarts,
        settings: job.cr.recovery,
        snapshot: spec.plan,
        verifyMode: () => verifyModeParam((k) => params.get(k)),
        apps: job.apps,
        procs,
        nodes: allocation.nodes,
        alive: (node) => hnp.nodes.has(node),
        remap: (nodes, apps) => mapJob(registry, params, { ...allocation, nodes, sequence: undefined }, apps, { oversubscribe: true }),
        say: (m) => writeStderr(`${job.who ?? 'ompx run'}: ${m}\n`),
      })
      if (!next) return status
      ;({ procs, restart, ref } = next)
      jobid = hnp.newJobId()
    }
  } finally {
    current = undefined
    await hnp.shutdown()
  }
}

function requireCheckpointable(registry: Registry, crs: string): void {
  const why = registry.select('crs', crs).notCheckpointable()
  if (why) throw new ActionableError(`--ckpt-interval, --enable-recovery and snapc_checkpoint_on_signal need a checkpointable job: ${why}`)
}
