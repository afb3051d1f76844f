/**
 * `ompx run`: mpirun's front end. Parses the mpirun-style command line, builds the allocation
 * and the map, starts the HNP (this process) and the node daemons, and runs the job. With
 * `--hnp` it submits the job to a running `ompx hnp` instead.
 */
import { defineCommand } from 'citty'
import { writeStderr } from '../tty'
import { parseRunArgs } from '../args/mpirun'
import { controlOptions, crOptions, ioOptions, launchOptions, perAppOptions, placementOptions, runOptions } from '../args/run-options'
import { runtimeOptions } from '../args/shared'
import type { HelpDoc } from './_help'
import { ActionableError } from '../errors'
import { crSettings } from '../args/cr-options'
import { buildJobAllocation, launcherFlagsToParams } from '../hnp/allocation/allocate'
import { runLocalJob } from '../hnp/job/run-job'
import { checkOutputFilename, type OutputOptions } from '../hnp/output/output-router'
import { mapJob } from '../hnp/mapping/map-job'
import { preflightApp } from '../hnp/launch/preflight'
import type { AppContext } from '../runtime/job'
import { createRuntime } from './_context'
import { submitJob } from '../tools/submit-client'
import { applyCommon } from './_command'

const RUN_HELP: Partial<HelpDoc> = {
  usage: 'ompx run [options] [--] <program> [args...] [: [options] <program2> [args...]] ...',
  description:
    'Launch a parallel job, mpirun-compatible. Options go before the program; a lone ":" starts the next app context (MPMD), which may have its own -np, -x and --wdir.',
  sections: [
    { title: 'Ranks (per app context)', options: perAppOptions },
    { title: 'Placement', options: placementOptions },
    { title: 'Input and output', options: ioOptions },
    { title: 'Job control', options: controlOptions },
    { title: 'Checkpoint and recovery', options: crOptions },
    { title: 'Daemons', options: launchOptions },
    { title: 'Runtime', options: runtimeOptions },
  ],
  examples: [
    'ompx run -np 4 -- ./app input.dat',
    'ompx run --hostfile hosts --map-by node --tag-output ./app',
    'ompx run -np 1 ./server : -np 8 ./worker',
    'ompx run --launcher local -H n1:4,n2:4 -np 8 ./app     # two simulated nodes on this machine',
  ],
  notes: ['Exit status: 0 if every rank exits 0, else that of the lowest-numbered failing rank; 110 after --timeout.'],
}

export default defineCommand({
  meta: {
    name: 'run',
    description: 'Launch a parallel job: ompx run [options] [--] <program> [args] [: [options] <program2> ...]',
  },
  async run({ rawArgs, cmd }) {
    const req = parseRunArgs(rawArgs)
    await applyCommon(cmd, req.job, runOptions, RUN_HELP)
    const { opts } = req.job
    launcherFlagsToParams(opts)
    const cr = crSettings(opts)
    const { params, registry } = await createRuntime(req.job)
    const output: Omit<OutputOptions, 'jobid'> = {
      tag: Boolean(opts['tag-output']),
      timestamp: Boolean(opts['timestamp-output']),
      mergeStderr: Boolean(opts['merge-stderr-to-stdout']),
      outputFilename: opts['output-filename'],
    }
    if (output.outputFilename) checkOutputFilename(output.outputFilename)
    const mapBy = opts['map-by']
    const oversubscribe = Boolean(opts.oversubscribe)

    if (opts.hnp) {
      if (opts.host || opts.hostfile) throw new ActionableError('--hnp runs on the HNP\'s own nodes; drop -H/--hostfile')
      if (cr.intervalSec || cr.recovery) throw new ActionableError('--ckpt-interval and --enable-recovery apply to jobs ompx run starts itself; start the ompx hnp with them instead of --hnp')
      if (opts.stdin !== undefined && opts.stdin !== 'none') throw new ActionableError('stdin is not forwarded to jobs submitted with --hnp; use --stdin none')
      preflightApps(req.apps)
      const options = { mapBy, oversubscribe, timeoutSec: req.timeoutSec, errmgrContinue: params.getBool('errmgr_continue'), displayMap: Boolean(opts['display-map']) }
      process.exit(await submitJob(registry, opts.hnp, req, options, output))
    }

    const { allocation, launcher } = buildJobAllocation(registry, params, opts)
    const stdinRank = req.stdin.kind === 'rank' ? req.stdin.rank : undefined
    const procs = mapJob(registry, params, allocation, req.apps, { mapBy, oversubscribe, stdinRank })
    preflightApps(req.apps)
    const status = await runLocalJob({
      registry,
      params,
      allocation,
      launcher,
      apps: req.apps,
      procs,
      output,
      stdin: req.stdin,
      timeoutSec: req.timeoutSec,
      displayMap: Boolean(opts['display-map']),
      quiet: Boolean(opts.quiet),
      cr,
    })
    process.exit(status)
  },
})

/** Every app context can start; a program whose MPI would find no PMI here gets one warning line. */
function preflightApps(apps: AppContext[]): void {
  const warned = new Set<string>()
  for (const app of apps) {
    const { warning } = preflightApp(app, process.env)
    if (warning && !warned.has(warning)) writeStderr(`ompx run: ${warning}\n`)
    if (warning) warned.add(warning)
  }
}
