/**
 * `ompx checkpoint [options] <pid>` (ompi-checkpoint): ask the HNP of `ompx run`/`ompx hnp`
 * <pid> for a coordinated checkpoint of its job, optionally following its progress, and print
 * the snapshot reference; or list the job's snapshots.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption, runtimeOptions } from '../args/shared'
import { ActionableError } from '../errors'
import { createRuntime } from './_context'
import { resolveHnp } from '../wire/contact'
import { connectHnp } from '../tools/hnp-client'
import { printSnapshotList, printTiming, statusLine } from '../tools/checkpoint-output'
import { WireError } from '../wire/codec'
import { parseCommand } from './_command'

const specs = [
  { name: 'term', description: 'End the job once the checkpoint is taken' },
  { name: 'stop', description: 'Stop the ranks (SIGSTOP) once the checkpoint is taken; resume with kill -CONT <pid>' },
  { name: 'status', aliases: ['s'], description: 'Print progress as the checkpoint moves through its states' },
  { name: 'list', aliases: ['l'], description: 'List the snapshots of the job instead of taking one' },
  { name: 'timing', description: 'Print how long each phase took' },
  { name: 'jobid', arity: 1, valueHint: 'id', description: 'Which job, when the HNP runs several (ompx ps shows them)' },
  jsonOption,
  ...runtimeOptions,
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'checkpoint', description: 'Take a coordinated checkpoint of a running job: ompx checkpoint [options] <pid>' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 1,
      help: {
        usage: 'ompx checkpoint [options] <pid>',
        examples: ['ompx checkpoint 4242', 'ompx checkpoint -s --term 4242', 'ompx checkpoint -l 4242'],
        notes: [
          'The job must run with a checkpointable CRS (--mca crs self, with ranks using ompx/app or ompx shim).',
          'Prints "Snapshot Ref.: <seq> <ref>"; restart with: ompx restart <ref>.',
        ],
      },
    })
    const o = scanned.opts
    const pid = scanned.rest[0]
    if (!pid) throw new ActionableError('ompx checkpoint needs the PID of ompx run or ompx hnp (ompx ps lists them)')
    if (!/^\d+$/.test(pid)) throw new ActionableError(`"${pid}" is not a PID; give the PID of ompx run or ompx hnp`)
    if (o.list && (o.term || o.stop)) throw new ActionableError('--list shows snapshots; it cannot be combined with --term or --stop')
    if (o.term && o.stop) throw new ActionableError('--term and --stop exclude each other: the job either ends or stops')
    const hnp = resolveHnp(pid)
    const { registry } = await createRuntime(scanned)
    const { channel } = await connectHnp(registry, hnp)
    const jobid = o.jobid
    try {
      if (o.list) {
        const where = await channel.request({ t: 'tool.snapshots', jobid }, 'hnp.snapshots')
        await printSnapshotList(where, Boolean(o.json))
        return
      }
      const t0 = performance.now()
      let last = 0
      if (o.status) {
        channel.on('hnp.ckpt-status', (m) => {
          process.stdout.write(statusLine(m.elapsed - last, m.elapsed, m.state, m.ref) + '\n')
          last = m.elapsed
        })
      }
      // A checkpoint may take long (big images, slow disks): the HNP enforces snapc_base_timeout.
      const done = await channel.request({ t: 'tool.checkpoint', jobid, term: Boolean(o.term), stop: Boolean(o.stop), status: Boolean(o.status) }, 'hnp.ckpt-done', 24 * 3600_000)
      if (o.json) {
        console.log(JSON.stringify({ jobid: done.jobid, ref: done.ref, seq: done.seq, dir: done.dir, bytes: done.bytes, timing: done.timing, ms: Math.round(performance.now() - t0) }, null, 2))
        return
      }
      console.log(`Snapshot Ref.: ${done.seq} ${done.ref}`)
      if (o.timing) printTiming(done.timing, done.bytes)
    } catch (err) {
      // The HNP's refusal ("checkpoint in progress", "not checkpointable") is already one line of advice.
      if (err instanceof WireError) throw new ActionableError(err.message)
      throw err
    } finally {
      channel.close()
    }
  },
})
