/**
 * How `ompx checkpoint` prints: progress lines in ompi-checkpoint's shape
 * (`[ delta / total] <State> - <ref>`), the phase timing table, and the list of snapshots.
 */
import { join } from 'node:path'
import { listSnapshots } from '../sstore/list-snapshots'
import type { MessageOf } from '../wire/messages'
import { renderTable } from './table'

export function statusLine(deltaMs: number, totalMs: number, state: string, ref: string): string {
  const sec = (ms: number) => (ms / 1000).toFixed(2).padStart(8)
  return `[${sec(deltaMs)} / ${sec(totalMs)}] ${state.padStart(25)} - ${ref}`
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

const PHASES: [string, string][] = [
  ['running', 'Running (all ranks quiesced)'],
  ['localFinish', 'Local finish (images written)'],
  ['storeSync', 'Store sync'],
  ['establish', 'Establish (global.json committed)'],
  ['continue', 'Continue (ranks released)'],
  ['total', 'Total'],
]

export function printTiming(timing: Record<string, number>, bytes: number): void {
  const rows = PHASES.map(([k, label]) => [label, `${((timing[k] ?? 0) / 1000).toFixed(3)} s`])
  rows.push(['Size', formatBytes(bytes)])
  console.log(renderTable(['PHASE', 'TIME'], rows))
}

/** The job's snapshots (one ref, each finished seq) as a table or JSON. */
export async function printSnapshotList(where: MessageOf<'hnp.snapshots'>, json: boolean): Promise<void> {
  const mine = listSnapshots(where.dir).find((s) => s.ref === where.ref)
  const seqs = mine?.seqs ?? []
  if (json) {
    console.log(JSON.stringify({ jobid: where.jobid, ref: where.ref, dir: join(where.dir, where.ref), seqs }, null, 2))
    return
  }
  if (mine?.error) throw new Error(mine.error)
  if (seqs.length === 0) {
    console.log(`job ${where.jobid}: no snapshots yet (they will go to ${join(where.dir, where.ref)})`)
    return
  }
  console.log(`Snapshots of job ${where.jobid}: ${join(where.dir, where.ref)}`)
  const rows = seqs.map((s) => [String(s.seq), new Date(s.finished).toISOString().replace('T', ' ').slice(0, 19), formatBytes(s.bytes), s.crs, String(s.ranks)])
  console.log(renderTable(['SEQ', 'TIME', 'SIZE', 'CRS', 'RANKS'], rows))
}
