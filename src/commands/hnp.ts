/**
 * `ompx hnp`: a persistent head node process (Open MPI's DVM). Starts daemons on its
 * allocation once, then runs any number of jobs submitted with `ompx run --hnp <pid>`, several
 * at a time, until `ompx hnp --stop <pid>` or a signal ends it.
 */
import { defineCommand } from 'citty'
import { closeSync, openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { jobOptions } from '../args/run-options'
import { pickOptions, type OptionSpec } from '../args/scan'
import { runtimeOptions } from '../args/shared'
import { ActionableError } from '../errors'
import { buildJobAllocation, hnpAddress, launcherFlagsToParams } from '../hnp/allocation/allocate'
import { Hnp } from '../hnp/hnp'
import { sessionRoot } from '../runtime/session'
import { serveSubmissions } from '../hnp/job/submissions'
import { SignalCheckpoint } from '../hnp/snapc/signal-checkpoint'
import { checkpointSignal } from '../params/core'
import { writeStderr } from '../tty'
import { createRuntime } from './_context'
import { connectHnp } from '../tools/hnp-client'
import { parseCommand } from './_command'

const specs = [
  ...pickOptions(jobOptions, ['host', 'hostfile', 'launcher', 'launch-agent', 'preload-binary']),
  { name: 'daemonize', aliases: ['d'], description: 'Go to the background once ready (log in the session directory)' },
  { name: 'stop', arity: 1, valueHint: 'pid|uri|file', description: 'Stop a running ompx hnp and its daemons' },
  ...runtimeOptions,
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'hnp', description: 'Run a persistent HNP with daemons on an allocation; submit jobs with ompx run --hnp' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 0,
      help: {
        usage: 'ompx hnp [-H hosts | --hostfile F] [--daemonize]   |   ompx hnp --stop <pid>',
        examples: ['ompx hnp --hostfile hosts --daemonize', 'ompx run --hnp <pid> -np 8 -- ./app', 'ompx hnp --stop <pid>'],
      },
    })
    const { opts } = scanned
    launcherFlagsToParams(opts)
    const { params, registry } = await createRuntime(scanned)

    if (opts.stop) {
      const { channel, hnp } = await connectHnp(registry, opts.stop)
      const closed = new Promise<void>((r) => channel.onClose(() => r()))
      channel.send({ t: 'tool.stop' })
      let timer: Timer | undefined
      const gaveUp = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 15000)))
      const timedOut = await Promise.race([closed.then(() => false), gaveUp])
      clearTimeout(timer)
      if (timedOut) throw new ActionableError(`HNP ${hnp.pid ?? hnp.uri} did not stop within 15 s`)
      console.log(`ompx hnp: stopped HNP ${hnp.pid ?? hnp.uri}`)
      return
    }
    if (opts.daemonize) return daemonize(rawArgs)

    const { allocation, launcher } = buildJobAllocation(registry, params, opts)
    const hnp = await Hnp.start({ registry, params, address: hnpAddress(params, allocation.nodes) })
    const stop = async (code: number) => {
      await hnp.shutdown()
      // A clean stop leaves nothing behind, not even the --daemonize log.
      if (process.env.OMPX_HNP_LOG) rmSync(process.env.OMPX_HNP_LOG, { force: true })
      process.exit(code)
    }
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(0))
    try {
      await hnp.startDaemons(allocation.nodes, launcher)
    } catch (err) {
      await hnp.shutdown()
      throw err
    }
    serveSubmissions({ hnp, registry, params, allocation, launcher })
    // snapc_checkpoint_on_signal: the signal (to this process, or to a daemon: Slurm's warning
    // before a time limit) checkpoints every running job once, as ompx run does for its one job.
    if (checkpointSignal(params)) {
      const onSignal = new SignalCheckpoint(hnp.coordinators, params, (m) => writeStderr(`ompx hnp: ${m}\n`))
      hnp.onCheckpointSignal = (from) => onSignal.trigger(from)
      process.on(onSignal.signal, () => onSignal.trigger('ompx hnp'))
    }
    hnp.toolHandlers.push((ch) => ch.on('tool.stop', () => void stop(0)))
    // The one line scripts wait for (and --daemonize relays): who we are and where.
    console.log(`ompx hnp: pid ${process.pid} uri ${hnp.uri} nodes ${allocation.nodes.map((n) => n.name).join(',')}`)
  },
})

/** Start ourselves again in the background and return once it says it is ready. */
async function daemonize(rawArgs: string[]): Promise<void> {
  const args = rawArgs.filter((a) => a !== '--daemonize' && a !== '-d')
  const log = join(sessionRoot(), `hnp-${Date.now()}.log`)
  const fd = openSync(log, 'a', 0o600)
  const child = Bun.spawn([process.execPath, 'hnp', ...args], {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: fd,
    detached: true,
    env: { ...process.env, OMPX_HNP_LOG: log },
  })
  closeSync(fd)
  const reader = child.stdout.getReader()
  let text = ''
  while (!text.includes('\n')) {
    const { done, value } = await reader.read()
    if (done) throw new ActionableError(`the HNP did not start; see ${log}`)
    text += new TextDecoder().decode(value)
  }
  reader.releaseLock()
  child.unref()
  process.stdout.write(text.split('\n')[0] + ` log ${log}\n`)
  process.exit(0)
}
