/**
 * `ompx run`: mpirun's front end. Parses the mpirun-style command line, builds the allocation
 * and the map, then runs the job with the HNP and this node's daemon inside this process.
 */
import { defineCommand } from 'citty'
import { availableParallelism } from 'node:os'
import { parseRunArgs } from '../args/mpirun'
import { runOptions } from '../args/run-options'
import { toCittyArgs } from '../args/scan'
import { ActionableError } from '../errors'
import { chooseLauncher, markSimulated } from '../hnp/choose-launcher'
import { renderMap } from '../hnp/display-map'
import { JobRunner } from '../hnp/job-runner'
import { Hnp } from '../hnp/hnp'
import { preflightApp } from '../hnp/preflight'
import { createJobDir, removeJobDir } from '../hnp/session'
import { installJobSignals } from '../hnp/signals'
import { buildAllocation } from '../runtime/allocation'
import { createRuntime } from '../runtime/context'
import { assignLocalRanks } from '../runtime/job'
import { parseMapBy } from '../runtime/map-by'
import { applyCommon } from './_command'

export default defineCommand({
  meta: {
    name: 'run',
    description: 'Launch a parallel job: ompx run [options] [--] <program> [args] [: [options] <program2> ...]',
  },
  args: () => toCittyArgs(runOptions, { program: 'Program to run on every rank, then its arguments' }),
  async run({ rawArgs, cmd }) {
    const req = parseRunArgs(rawArgs)
    await applyCommon(cmd, req.job)
    const { opts } = req.job
    // Launcher options are parameters underneath, so params files and OMPX_MCA_* can set them too.
    const mca = ((opts.mca as [string, string][] | undefined) ??= [])
    if (opts['launch-agent']) mca.push(['launch_agent', opts['launch-agent'] as string])
    if (opts['preload-binary']) mca.push(['preload_binary', '1'])
    const { params, registry } = await createRuntime(req.job)

    const allocation = buildAllocation({
      hosts: opts.host as string[] | undefined,
      hostfile: opts.hostfile as string | undefined,
      defaultSlots: availableParallelism(),
    })
    const launcherName = (opts.launcher as string | undefined) || params.get('launcher') || undefined
    markSimulated(allocation.nodes, launcherName)
    const launcher = chooseLauncher(registry, allocation.nodes, launcherName)
    const mapBy = parseMapBy((opts['map-by'] as string | undefined) ?? params.get('rmaps_base_mapping_policy'))
    const mapper = registry.select('mapper', mapBy.mapper)
    const oversubscribe = !mapBy.nooversubscribe && (Boolean(opts.oversubscribe) || Boolean(mapBy.oversubscribe))
    const procs = assignLocalRanks(mapper.map({ allocation, apps: req.apps, arg: mapBy.arg, oversubscribe }))
    if (req.stdin.kind === 'rank' && req.stdin.rank >= procs.length) {
      throw new ActionableError(`--stdin ${req.stdin.rank}: the job has only ${procs.length} ranks`)
    }
    for (const app of req.apps) preflightApp(app, process.env)

    const hnp = await Hnp.start({ registry, params, address: params.get('hnp_address') || '127.0.0.1' })
    let status = 1
    try {
      const used = allocation.nodes.filter((n) => procs.some((p) => p.node === n.name))
      await hnp.startDaemons(used, launcher)
      const jobid = hnp.newJobId()
      if (opts['display-map']) process.stdout.write(renderMap(jobid, allocation, req.apps, procs))
      hnp.jobs.add(jobid, req.apps, procs)
      hnp.publish()
      const sessionDir = createJobDir(jobid)
      const runner = new JobRunner({
        jobid,
        apps: req.apps,
        procs,
        sessionDir,
        output: {
          jobid,
          tag: Boolean(opts['tag-output']),
          timestamp: Boolean(opts['timestamp-output']),
          mergeStderr: Boolean(opts['merge-stderr-to-stdout']),
          outputFilename: opts['output-filename'] as string | undefined,
        },
        stdin: req.stdin,
        timeoutSec: req.timeoutSec,
        errmgrContinue: params.getBool('errmgr_continue'),
        killGraceSec: params.getNumber('kill_grace') ?? 5,
        quiet: Boolean(opts.quiet),
        nodes: hnp.nodes,
        onLaunched: (rank, pid) => hnp.jobs.launched(jobid, rank, pid),
        onRankExit: (e) => hnp.jobs.exited(jobid, e),
      })
      installJobSignals(runner)
      status = await runner.run()
      removeJobDir(sessionDir)
    } finally {
      await hnp.shutdown()
    }
    process.exit(status)
  },
})
