/**
 * How `ompx migrate` prints: the request as orte-migrate's verbose listing ("Migrate Nodes /
 * Ranks / Onto"), progress lines in its shape (`[ delta /  total] <State>`, seconds), and the
 * result: a table of the moved ranks, one JSON object, or the phase timing.
 */
import type { MessageOf } from '../wire/messages'
import { formatBytes } from './checkpoint-output'
import { renderTable } from './table'

type Done = MessageOf<'hnp.migrate-done'>

/** `[  0.42 /   1.37]                    Moving` */
export function migrateStatusLine(deltaMs: number, totalMs: number, state: string): string {
  const sec = (ms: number) => (ms / 1000).toFixed(2).padStart(6)
  return `[${sec(deltaMs)} / ${sec(totalMs)}] ${state.padStart(25)}`
}

/** The request as the user gave it, before anything is asked of the HNP. */
export function requestListing(sel: { ranks: number[]; off: string[]; onto: string[] }): string {
  const list = (title: string, items: (string | number)[], unit: string) =>
    [`${title}: (${items.length} ${unit})`, ...items.map((x) => `\t"${x}"`)].join('\n')
  return [list('Migrate Nodes', sel.off, 'nodes'), list('Migrate Ranks', sel.ranks, 'ranks'), list('Migrate Onto ', sel.onto, 'nodes')].join('\n')
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)} s`

/** The JSON answer: per rank where from and to, its pids, bytes and downtime; and the totals. */
export function migrateJson(done: Done): object {
  return {
    jobid: done.jobid,
    ranks: done.moves.map((m) => ({ rank: m.rank, from: m.from, to: m.to, oldPid: m.oldPid, newPid: m.newPid, bytes: m.bytes, downtimeMs: m.downtimeMs })),
    totals: { ranks: done.moves.length, bytes: done.bytes, totalMs: done.totalMs, maxDowntimeMs: Math.max(0, ...done.moves.map((m) => m.downtimeMs)) },
    timing: done.timing,
  }
}

/** The moved ranks as a table, then one summary line. */
export function migrateSummary(done: Done): string {
  const rows = [...done.moves]
    .sort((a, b) => a.rank - b.rank)
    .map((m) => [String(m.rank), m.from, m.to, String(m.oldPid), String(m.newPid), formatBytes(m.bytes), seconds(m.downtimeMs)])
  const n = done.moves.length
  return [
    renderTable(['RANK', 'FROM', 'TO', 'OLD PID', 'NEW PID', 'SIZE', 'DOWNTIME'], rows),
    `Migrated ${n} rank${n === 1 ? '' : 's'} of job ${done.jobid} in ${seconds(done.totalMs)} (${formatBytes(done.bytes)} moved)`,
  ].join('\n')
}

/** Each phase the coordinator timed, in its order, then the total and the size. */
export function migrateTiming(done: Done): string {
  const rows = Object.entries(done.timing)
    .filter(([k]) => k !== 'total')
    .map(([k, ms]) => [k, seconds(ms)])
  rows.push(['total', seconds(done.timing.total ?? done.totalMs)], ['size', formatBytes(done.bytes)])
  return renderTable(['PHASE', 'TIME'], rows)
}
