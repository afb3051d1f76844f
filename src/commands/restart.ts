/**
 * `ompx restart [options] <ref>` (ompi-restart): start a job again from a global snapshot — the
 * latest finished seq or `--seq N` — after verifying every file's checksum. By default on the
 * nodes and with the mapping it had (inside a Slurm allocation: on the allocation's nodes);
 * -H/--hostfile/--map-by/--launcher move it elsewhere.
 */
import { defineCommand } from 'citty'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { crSettings } from '../args/cr-options'
import { parseStdin, parseTimeout } from '../args/mpirun'
import { controlOptions, crOptions, ioOptions, launchOptions, placementOptions } from '../args/run-options'
import { omitOption, type OptionSpec } from '../args/scan'
import { runtimeOptions } from '../args/shared'
import { ActionableError, errorMessage } from '../errors'
import { buildJobAllocation, launcherFlagsToParams } from '../hnp/allocation/allocate'
import { runLocalJob } from '../hnp/job/run-job'
import { globalDirOf } from '../hnp/snapc/plan'
import { restartPlacement, restartApps } from '../hnp/mapping/restart-placement'
import { createRuntime } from './_context'
import { verifyModeParam } from '../sstore/checksum'
import { GlobalSnapshot } from '../sstore/global-snapshot'
import { GLOBAL_META } from '../sstore/types'
import { slurmNodeNames } from '../runtime/slurm-env'
import { renderSnapshotInfo, renderShowme } from '../tools/restart-output'
import { checkOutputFilename } from '../hnp/output/output-router'
import { parseCommand } from './_command'

const restartOnly = [
  { name: 'seq', arity: 1, valueHint: 'N', description: 'Restart from this checkpoint of the snapshot (default: the latest finished)' },
  { name: 'info', aliases: ['i'], description: 'Show the snapshot (apps, nodes, checkpoints) and exit' },
  { name: 'showme', description: 'Print the equivalent ompx run command and exit' },
] as const satisfies readonly OptionSpec[]
const jobSpecs = [...placementOptions, ...ioOptions, ...controlOptions, ...crOptions, ...omitOption(launchOptions, 'hnp')]
const specs = [...restartOnly, ...jobSpecs, ...runtimeOptions] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'restart', description: 'Restart a job from a snapshot: ompx restart [options] <ref>' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 1,
      help: {
        usage: 'ompx restart [options] <ref>',
        sections: [
          { title: 'Snapshot', options: restartOnly },
          { title: 'Where and how to run (as for ompx run)', options: jobSpecs },
          { title: 'Runtime', options: runtimeOptions },
        ],
        examples: ['ompx restart ompx_global_snapshot_4242.1.ckpt', 'ompx restart --seq 2 -H n3:2,n4:2 --launcher local ompx_global_snapshot_4242.1.ckpt'],
        notes: ['Ranks see OMPX_RESTART=1 and OMPX_RESTART_DIR (their image); SDK apps get onRestart(dir).'],
      },
    })
    const o = scanned.opts
    const given = scanned.rest[0]
    if (!given) throw new ActionableError('ompx restart needs a snapshot reference (ompx checkpoint printed it; ompx checkpoint -l <pid> lists them)')
    const seqWanted = o.seq === undefined ? undefined : Number(o.seq)
    if (seqWanted !== undefined && !(Number.isSafeInteger(seqWanted) && seqWanted >= 0)) throw new ActionableError(`--seq takes a checkpoint number (0, 1, ...), got "${o.seq}"`)

    // Find the snapshot first: the parameters it recorded are the base of this run's.
    const first = await createRuntime(scanned)
    const snap = openSnapshot(given, globalDirOf(first.params))
    const meta = snap.committed!
    const seq = seqWanted === undefined ? snap.latest() : snap.get(seqWanted)
    if (!seq) throw new ActionableError(`snapshot ${snap.ref} has no finished checkpoint to restart from`)
    if (o.info) return void process.stdout.write(renderSnapshotInfo(snap, meta, seq))

    o.mca = [...Object.entries(meta.params).filter(([k]) => k !== 'launcher' || !o.launcher), ...(o.mca ?? [])]
    launcherFlagsToParams(o)
    const cr = crSettings(o)
    const { registry, params } = await createRuntime(scanned)
    const apps = restartApps(meta)
    // Inside a Slurm allocation the job goes where the allocation is (a new batch job resuming
    // the last one has other nodes); elsewhere, by default, where it ran.
    const placed = Boolean(o.host || o.hostfile) || slurmNodeNames(process.env) !== undefined
    if (!placed) o.host = meta.nodes.map((n) => `${n.name}:${n.slots}`)
    const { allocation, launcher } = buildJobAllocation(registry, params, o)
    const procs = restartPlacement(registry, params, allocation, apps, seq, { mapBy: o['map-by'], oversubscribe: Boolean(o.oversubscribe) })
    if (o.showme) return void process.stdout.write(renderShowme(snap, seq, apps, procs, params, launcher.name))

    if (o['output-filename']) checkOutputFilename(o['output-filename'])
    // Layout, sizes and kv.json now; the checksums are read while the ranks are restored, which
    // keeps them from running until every one matched (NodeJob.launch's `verified`).
    const { verified } = await snap.verifyAhead(seq.seq, verifyModeParam((k) => params.get(k)))
    const status = await runLocalJob({
      registry,
      params,
      allocation,
      launcher,
      apps,
      procs,
      output: {
        tag: Boolean(o['tag-output']),
        timestamp: Boolean(o['timestamp-output']),
        mergeStderr: Boolean(o['merge-stderr-to-stdout']),
        outputFilename: o['output-filename'],
      },
      stdin: parseStdin(o.stdin),
      timeoutSec: parseTimeout(o.timeout),
      displayMap: Boolean(o['display-map']),
      quiet: Boolean(o.quiet),
      cr,
      ref: snap.ref,
      globalDir: dirname(snap.dir),
      restart: { seq, rankDir: (rank) => snap.rankDir(seq.seq, rank), ...(verified && { verified }) },
      who: 'ompx restart',
    })
    process.exit(status)
  },
})

/**
 * The snapshot the user named. When that is a path that cannot be opened, say why (missing,
 * unreadable, not a directory, no metadata) instead of "no snapshot ... in <global dir>".
 */
function openSnapshot(given: string, globalDir: string): GlobalSnapshot {
  try {
    return GlobalSnapshot.resolve(given, globalDir)
  } catch (err) {
    if (!(err instanceof ActionableError) || (!given.includes('/') && !existsSync(given))) throw err
    const path = resolve(given.trim())
    const dir = basename(path) === GLOBAL_META ? dirname(path) : path
    try {
      if (!statSync(dir).isDirectory()) throw new ActionableError(`${given} is not a snapshot: it is a file; give the snapshot's .ckpt directory or its ${GLOBAL_META}`)
      readdirSync(dir)
      if (!existsSync(join(dir, GLOBAL_META))) throw new ActionableError(`${given} is not a snapshot: it has no ${GLOBAL_META} (no checkpoint of it ever finished)`)
      statSync(join(dir, GLOBAL_META))
    } catch (why) {
      if (why instanceof ActionableError) throw why
      throw new ActionableError(`cannot read snapshot ${given}: ${errorMessage(why)}`)
    }
    throw err
  }
}
