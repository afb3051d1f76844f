/**
 * What tools show about the snapshots in a global snapshot directory. Only committed seqs are
 * listed; a damaged global.json is reported on its ref instead of failing the whole listing.
 */
import { join } from 'node:path'
import { errorMessage } from '../errors'
import { readGlobalMeta } from './global-meta'
import { committedRefs, jobidOfRef } from './refs'
import { GLOBAL_META } from './types'

export interface SeqSummary {
  seq: number
  /** Epoch ms the checkpoint was committed. */
  finished: number
  bytes: number
  crs: string
  ranks: number
}

export interface SnapshotSummary {
  ref: string
  dir: string
  jobid: string
  created: number
  /** Command line of the first app, for recognising the job. */
  argv: string[]
  seqs: SeqSummary[]
  /** Set when global.json could not be used; `seqs` is empty then. */
  error?: string
}

/** Every global snapshot in `globalDir` with its finished seqs, sorted by ref. */
export function listSnapshots(globalDir: string): SnapshotSummary[] {
  return committedRefs(globalDir).map((ref): SnapshotSummary => {
    const dir = join(globalDir, ref)
    try {
      const meta = readGlobalMeta(join(dir, GLOBAL_META))!
      return {
        ref,
        dir,
        jobid: meta.jobid,
        created: meta.created,
        argv: meta.apps[0]?.argv ?? [],
        seqs: meta.seqs.map((s) => ({ seq: s.seq, finished: s.finished, bytes: s.bytes, crs: s.crs, ranks: s.ranks.length })),
      }
    } catch (err) {
      return { ref, dir, jobid: jobidOfRef(ref), created: 0, argv: [], seqs: [], error: errorMessage(err) }
    }
  })
}
