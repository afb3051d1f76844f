/**
 * The launch targets of issue #16, judged from one run of scripts/bench/launch.ts: ompx beside the
 * peer it is compared with in the same run, the bound, met or missed. Kept apart from launch.ts
 * so the measuring code stays readable; the lead re-runs the benchmark on a quiet machine.
 */
import { fmtMb, fmtMs, markdownTable } from './lib'

/** What launch.ts knows of a cell (medians over its runs). */
export interface TargetCell {
  status: string
  medianWallMs?: number
  medianSelfKb?: number
  medianDaemonKb?: number
}

type Lookup = (label: string, launcher: string) => TargetCell | undefined

const ok = (c: TargetCell | undefined) => c?.status === 'ok'
const verdict = (value: number | undefined, bound: number) => (value === undefined || Number.isNaN(value) ? 'n/a' : value <= bound ? 'met' : 'missed')

/** The target table as markdown; rows whose cells were not measured say n/a. */
export function launchTargets(cell: Lookup, multiLabel: string): string {
  const rows: string[][] = []
  const ratio = (what: string, label: string, peer: string, bound: number) => {
    const a = cell(label, 'ompx')
    const b = cell(label, peer)
    const r = ok(a) && ok(b) ? a!.medianWallMs! / b!.medianWallMs! : undefined
    rows.push([what, ok(a) ? fmtMs(a!.medianWallMs!) : 'n/a', `${peer} ${ok(b) ? fmtMs(b!.medianWallMs!) : 'n/a'}`, r === undefined ? 'n/a' : `${r.toFixed(2)}x`, `<= ${bound}x`, verdict(r, bound)])
  }
  const rss = (what: string, kb: number | undefined, boundMb: number) => {
    const mb = kb === undefined ? undefined : kb / 1024
    rows.push([what, kb === undefined ? 'n/a' : fmtMb(kb), '', '', `<= ${boundMb} MB`, verdict(mb, boundMb)])
  }
  ratio('`ompx run -np 1 -- true`', '1', 'hydra', 1.5)
  ratio('`ompx run -np 64 -- true`', '64', 'hydra', 0.8)
  ratio(`${multiLabel} simulated nodes`, multiLabel, 'mpirun', 1.0)
  const at64 = cell('64', 'ompx')
  rss('peak RSS (VmHWM) of `ompx run`, np 64', ok(at64) ? at64!.medianSelfKb : undefined, 40)
  const multi = cell(multiLabel, 'ompx')
  rss(`peak RSS (VmHWM) of each \`ompx orted\`, ${multiLabel}`, ok(multi) ? multi!.medianDaemonKb : undefined, 35)
  return markdownTable(['target', 'ompx', 'peer', 'ratio', 'bound', ''], rows)
}
