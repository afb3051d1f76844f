/**
 * Our stdin, forwarded to the ranks that read it (--stdin: one rank, all, or none), as mpirun
 * does. Each chunk goes to the rank's node as it is at that moment, so a rank that migrated
 * keeps reading the same stream on its new node.
 */
import type { RunRequest } from '../../args/mpirun'
import type { ProcInfo } from '../../runtime/job'

export function readsStdin(stdin: RunRequest['stdin'], rank: number): boolean {
  return stdin.kind === 'all' || (stdin.kind === 'rank' && stdin.rank === rank)
}

/** Pump our stdin to the reading ranks until EOF (then `null`, the rank's EOF). */
export function forwardStdin(stdin: RunRequest['stdin'], procs: ProcInfo[], send: (proc: ProcInfo, data: Uint8Array | null) => void): void {
  const targets = procs.filter((p) => readsStdin(stdin, p.rank))
  if (targets.length === 0) return
  const all = (data: Uint8Array | null) => {
    for (const p of targets) send(p, data)
  }
  void (async () => {
    try {
      for await (const chunk of Bun.stdin.stream()) all(chunk)
    } catch {
      // stdin unreadable (closed terminal): treat as end of input.
    }
    all(null)
  })()
}
