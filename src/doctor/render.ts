/** Text rendering of a doctor report: one aligned table per section. */
import { renderTable } from '../tools/table'
import type { DoctorReport } from './types'

export function renderDoctor(r: DoctorReport): string {
  const out = [`ompx ${r.ompx} on ${r.platform}, kernel ${r.kernel}`]
  for (const s of r.sections) {
    out.push('', `${s.title}:`)
    const rows = s.checks.map((c) => [`  ${c.verdict}`, c.name, c.detail])
    // Aligned columns without a header row: the table's (empty) header line is dropped.
    out.push(renderTable(['', '', ''], rows).split('\n').slice(1).join('\n'))
  }
  return out.join('\n')
}

/** The closing line: how many checks failed, and which. */
export function summary(r: DoctorReport): string {
  const fails = r.sections.flatMap((s) => s.checks.filter((c) => c.verdict === 'fail').map((c) => `${s.title}: ${c.name}`))
  return fails.length ? `${fails.length} problem(s): ${fails.join('; ')}` : 'no problems found'
}
