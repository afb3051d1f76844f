/** `--display-map`: the job map in the layout mpirun users know, printed before launch. */
import type { Allocation, AppContext, ProcInfo } from '../../runtime/job'

export function renderMap(jobid: string, allocation: Allocation, apps: AppContext[], procs: ProcInfo[]): string {
  const lines = [` ========================   JOB MAP   ========================`, ``]
  for (const node of allocation.nodes) {
    const here = procs.filter((p) => p.node === node.name)
    if (here.length === 0) continue
    lines.push(` Data for node: ${node.name}\tNum slots: ${node.slots}\tMax slots: ${node.maxSlots ?? 0}\tNum procs: ${here.length}`)
    for (const p of here) {
      const app = apps[p.app]!
      lines.push(`\tProcess jobid: [${jobid}] App: ${p.app} Process rank: ${p.rank} Local rank: ${p.localRank} Program: ${app.argv[0]}`)
    }
    lines.push('')
  }
  lines.push(` =============================================================`)
  return lines.join('\n') + '\n'
}
