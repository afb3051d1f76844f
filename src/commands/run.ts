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
import { renderMap } from '../hnp/display-map'
import { JobRunner } from '../hnp/job-runner'
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
    const { params, registry } = await createRuntime(req.job)

    const allocation = buildAllocation({
      hosts: opts.host as string[] | undefined,
      hostfile: opts.hostfile as string | undefined,
      defaultSlots: availableParallelism(),
    })
    const launcher = registry.select('launcher')
    if (!launcher.accepts(allocation.nodes)) {
      const remote = allocation.nodes.map((n) => n.name).join(', ')
      throw new ActionableError(`the ${launcher.name} launcher can only start ranks on this machine, not on ${remote}; multi-node launch comes with 'ompx orted'`)
    }
    const mapBy = parseMapBy((opts['map-by'] as string | undefined) ?? params.get('rmaps_base_mapping_policy'))
    const mapper = registry.select('mapper', mapBy.mapper)
    const oversubscribe = !mapBy.nooversubscribe && (Boolean(opts.oversubscribe) || Boolean(mapBy.oversubscribe))
    const procs = assignLocalRanks(mapper.map({ allocation, apps: req.apps, arg: mapBy.arg, oversubscribe }))
    if (req.stdin.kind === 'rank' && req.stdin.rank >= procs.length) {
      throw new ActionableError(`--stdin ${req.stdin.rank}: the job has only ${procs.length} ranks`)
    }
    for (const app of req.apps) preflightApp(app, process.env)

    const jobid = `${process.pid}.1`
    if (opts['display-map']) process.stdout.write(renderMap(jobid, allocation, req.apps, procs))
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
    })
    installJobSignals(runner)
    const status = await runner.run()
    removeJobDir(sessionDir)
    process.exit(status)
  },
})
