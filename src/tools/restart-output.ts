/** What `ompx restart --info` and `--showme` print. */
import type { Params } from '../params/params'
import type { AppContext, ProcInfo } from '../runtime/job'
import type { GlobalSnapshot } from '../sstore/global-snapshot'
import type { GlobalMeta, SeqMeta } from '../sstore/types'
import { shellQuote } from '../util/shell'
import { formatBytes } from './checkpoint-output'
import { renderTable } from './table'

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19)

export function renderSnapshotInfo(snap: GlobalSnapshot, meta: GlobalMeta, chosen: SeqMeta): string {
  const out = [`Snapshot ${snap.ref}`, `  directory: ${snap.dir}`, `  job:       ${meta.jobid} (created ${when(meta.created)})`]
  for (const a of meta.apps) out.push(`  app ${a.index}:     -np ${a.np} ${a.argv.map(shellQuote).join(' ')}  (in ${a.cwd})`)
  out.push(`  nodes:     ${meta.nodes.map((n) => `${n.name}:${n.slots}`).join(',')}`)
  out.push(`  params:    ${Object.entries(meta.params).map(([k, v]) => `${k}=${v}`).join(' ') || '-'}`, '')
  const rows = meta.seqs.map((s) => [
    `${s.seq === chosen.seq ? '*' : ' '}${s.seq}`,
    when(s.finished),
    formatBytes(s.bytes),
    s.crs,
    s.sstore,
    String(s.ranks.length),
    s.options.join(',') || '-',
  ])
  out.push(renderTable([' SEQ', 'TIME', 'SIZE', 'CRS', 'SSTORE', 'RANKS', 'OPTIONS'], rows), '')
  out.push(`Ranks of seq ${chosen.seq} (* = restarted from by default):`)
  out.push(renderTable(['  RANK', 'NODE', 'FILES', 'SIZE'], chosen.ranks.map((r) => [`  ${r.rank}`, r.node, String(r.files.length), formatBytes(r.bytes)])))
  return out.join('\n') + '\n'
}

/** The ompx run line that starts the same job, plus how the ranks learn they are restarted. */
export function renderShowme(snap: GlobalSnapshot, seq: SeqMeta, apps: AppContext[], procs: ProcInfo[], params: Params, launcher: string): string {
  const hosts = new Map<string, number>()
  for (const p of procs) hosts.set(p.node, (hosts.get(p.node) ?? 0) + 1)
  const words = ['ompx', 'run', '--launcher', launcher, '-H', [...hosts].map(([n, c]) => `${n}:${c}`).join(',')]
  for (const [k, v] of Object.entries(params.toEnv())) words.push('--mca', k.replace(/^OMPX_MCA_/, ''), v)
  apps.forEach((a, i) => {
    if (i > 0) words.push(':')
    words.push('-np', String(procs.filter((p) => p.app === a.index).length), '--wdir', a.cwd)
    for (const [k, v] of Object.entries(a.env)) words.push('-x', `${k}=${v}`)
    words.push('--', ...a.argv)
  })
  return [
    words.map(shellQuote).join(' '),
    `# each rank r also gets OMPX_RESTART=1 and OMPX_RESTART_DIR=${snap.seqDir(seq.seq)}/rank_<r>`,
    '',
  ].join('\n')
}
