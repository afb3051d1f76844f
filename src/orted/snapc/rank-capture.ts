/**
 * Stage 2 of a checkpoint for one rank on its node (LocalSnapc's `capture`, local-snapc.ts): the
 * CRS capture into the sstore's local dir, with FlushAhead sealing finished files meanwhile; the
 * seal (checksums + ompx-rank.json) once the node's other ranks are captured; the push to the
 * global store. Each step is reported to the HNP. Kept apart from the coordinator's messages.
 */
import { rmSync } from 'node:fs'
import { errorMessage } from '../../errors'
import type { Params } from '../../params/params'
import { callPlugin } from '../../plugins/registry'
import type { AppCoordinatorHandle, CrsPlugin, SStorePlugin } from '../../plugins/types'
import type { OutputTail, SnapshotLocation, SnapshotSink } from '../../sstore/types'
import { checksumAlgoParam } from '../../sstore/checksum'
import { FlushAhead } from '../../sstore/flush-ahead'
import { prepareRankDir, sealRankDir } from '../../sstore/local-snapshot'
import type { MessageOf, NodeToSnapc } from '../../wire/messages'

/** Which local snapshot a transfer carries: rank `rank` of seq `seq` of global snapshot `ref`. */
export interface SnapshotTarget {
  ref: string
  seq: number
  rank: number
}

/** What a capture needs of the job on this node. */
export interface CaptureContext {
  jobid: string
  node: string
  params: Params
  report(msg: NodeToSnapc): void
  /** Where a rank's captured files go when the store is not direct: the HNP's receiver for that seq. */
  snapshotSink(target: SnapshotTarget): SnapshotSink
  /** Host pid of a rank of this job on this node, while it runs. */
  pidOf(rank: number): number | undefined
  /** The rank's partial output lines once captured (stored with its snapshot, output-tails.ts). */
  outputTail(rank: number): Promise<OutputTail | undefined>
}

/** One rank's capture in a checkpoint, and the LocalSnapc state it follows. */
interface RankCapture {
  msg: MessageOf<'hnp.ckpt'>
  rank: number
  /** The CRS, sstore and dirs, resolved inside the capture: a plugin's error fails it alone. */
  where(): { crs: CrsPlugin; sstore: SStorePlugin; loc: SnapshotLocation; dir: string }
  /** The rank's app coordinator, while the app socket is up. */
  app(): AppCoordinatorHandle | null
  /** The HNP abandoned this seq: the capture removes its own files. */
  abandoned(): boolean
  /** Called once the CRS is done with the rank, whatever happened. */
  captured(): void
  /** The node's other ranks are captured too (no seal runs beside a capture). */
  allCaptured: Promise<unknown>
}

/** Capture, wait for `allCaptured`, seal, push to the store; report `captured` and `synced`. */
export async function captureRank(ctx: CaptureContext, c: RankCapture): Promise<void> {
  const { jobid, node } = ctx
  const { msg, rank, captured } = c
  const seq = msg.store.seq
  const { crs, sstore, loc, dir } = c.where()
  const fail = (op: 'captured' | 'synced', err: unknown) =>
    ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op, status: 'error', message: `rank ${rank} on ${node}: ${errorMessage(err)}` })
  let files
  let ahead: FlushAhead | undefined
  try {
    await prepareRankDir(dir)
    // Abandoned while the directory was being prepared: never start a capture for it (an app
    // told CAPTURE after its ABORT would hold itself for a release that never comes).
    if (c.abandoned()) {
      captured()
      return rmSync(dir, { recursive: true, force: true })
    }
    const t0 = performance.now()
    const pid = ctx.pidOf(rank)
    if (pid === undefined) throw new Error('the rank is no longer running')
    const app = crs.needsApp ? c.app() : null
    const algo = checksumAlgoParam((k) => ctx.params.get(k))
    // Seals the files the CRS is done with while it writes the rest (criu; not a program's own).
    if (crs.writesImagesOnce) ahead = new FlushAhead(dir, algo)
    const result = await callPlugin(crs, () => crs.capture({ rank, node, pid, dir, options: msg.options, app })).finally(captured)
    const captureMs = Math.round(performance.now() - t0)
    await c.allCaptured
    const outputTail = await ctx.outputTail(rank)
    const meta = await sealRankDir(dir, { rank, node, crs: crs.name, captureMs, info: result.info, outputTail }, algo, await ahead?.stop())
    files = meta.files
    if (c.abandoned()) return rmSync(dir, { recursive: true, force: true })
    ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op: 'captured', status: 'ok', snapshot: meta })
  } catch (err) {
    captured()
    await ahead?.stop() // nothing of it may touch the dir once this capture is given up
    // Abandoned meanwhile (the ABORT stopped it, most likely): nobody waits for this seq.
    if (c.abandoned()) return rmSync(dir, { recursive: true, force: true })
    return fail('captured', err)
  }
  try {
    if (!sstore.direct) {
      const sink = ctx.snapshotSink({ ref: loc.ref, seq, rank })
      await callPlugin(sstore, () => sstore.push(loc, files, sink))
    }
    ctx.report({ t: 'orted.ckpt', jobid, rank, seq, op: 'synced', status: 'ok' })
  } catch (err) {
    fail('synced', err)
  }
}
