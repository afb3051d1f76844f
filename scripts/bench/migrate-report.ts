/**
 * The table and verdicts of scripts/bench/migrate.ts (issue #12's targets): medians over the reps
 * that completed, per part (crs self, crs criu), of the one-rank move and of the whole-job round.
 */
import { markdownTable, median } from './lib'
import type { WholeRep } from './migrate-job'
import type { MoveRep } from './migrate-move'

export interface PartResult {
  name: 'self' | 'criu'
  skipped: string | null
  moves: MoveRep[]
  wholes: WholeRep[]
  errors: string[]
}

export interface PartSummary {
  name: string
  runs: number
  downtimeMs: number
  gapMs: number
  spacingMs: number
  toolMs: number
  bytes: number
  othersRatio: number
  ckptMs: number
  restartMs: number
  restartLineMs: number
  wholeMs: number
  /** Median over reps of (move tool wall / whole-job round of the same rep). */
  ratio: number
  phases: Record<string, number>
}

const MOVE_TARGET = 0.35
const RATE_TARGET = 0.9

export function summarize(p: PartResult): PartSummary | null {
  const n = Math.min(p.moves.length, p.wholes.length)
  if (n === 0) return null
  const m = <K extends keyof MoveRep>(k: K) => median(p.moves.map((r) => r[k] as number))
  const w = <K extends keyof WholeRep>(k: K) => median(p.wholes.map((r) => r[k]))
  const whole = p.wholes.map((r) => r.ckptMs + r.restartMs)
  const phases: Record<string, number> = {}
  for (const k of Object.keys(p.moves[0]!.timing)) phases[k] = median(p.moves.map((r) => r.timing[k] ?? 0))
  return {
    name: p.name,
    runs: n,
    downtimeMs: m('downtimeMs'),
    gapMs: m('gapMs'),
    spacingMs: m('spacingMs'),
    toolMs: m('toolMs'),
    bytes: m('bytes'),
    othersRatio: m('othersRatio'),
    ckptMs: w('ckptMs'),
    restartMs: w('restartMs'),
    restartLineMs: w('restartLineMs'),
    wholeMs: median(whole),
    ratio: median(Array.from({ length: n }, (_, i) => p.moves[i]!.toolMs / whole[i]!)),
    phases,
  }
}

const ms = (v: number) => `${Math.round(v)} ms`
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`

export function table(sums: PartSummary[], ranks: number, mb: number): string {
  const rows = sums.map((s) => [
    `crs ${s.name}`,
    ms(s.downtimeMs),
    `${ms(s.gapMs)} (${ms(s.spacingMs)})`,
    ms(s.toolMs),
    mib(s.bytes),
    `${s.othersRatio.toFixed(2)}`,
    `${ms(s.ckptMs)} + ${ms(s.restartMs)}${s.restartLineMs - s.restartMs > 5 ? ` (${ms(s.restartLineMs)} to 1st line)` : ''} = ${ms(s.wholeMs)}`,
    `${s.ratio.toFixed(2)}x`,
  ])
  const phases = sums.map((s) => `crs ${s.name}: ${Object.entries(s.phases).map(([k, v]) => `${k} ${v}`).join(', ')} (ms from the request)`)
  return [
    `One rank of ${ranks} x ${mb} MiB moved onto the spare node; medians of ${sums.map((s) => `${s.runs} (${s.name})`).join(', ')} reps`,
    '',
    markdownTable(['case', 'downtime (JSON)', 'line gap (usual)', 'move total', 'bytes', 'others rate', 'whole job: ckpt --term + restart', 'move / whole'], rows),
    '',
    'Move phases (timing of --json): ' + phases.join('; '),
  ].join('\n')
}

export function verdicts(sums: PartSummary[]): string[] {
  const out: string[] = []
  for (const s of sums) {
    out.push(`crs ${s.name}: one-rank move at most ${MOVE_TARGET}x of the whole-job round: ${s.ratio <= MOVE_TARGET ? 'MET' : 'MISSED'} (${s.ratio.toFixed(2)}x: ${ms(s.toolMs)} vs ${ms(s.wholeMs)})`)
  }
  const criu = sums.find((s) => s.name === 'criu')
  if (criu) {
    out.push(`crs criu: others' rate during the move within 10% of undisturbed: ${criu.othersRatio >= RATE_TARGET ? 'MET' : 'MISSED'} (${criu.othersRatio.toFixed(2)})`)
  }
  return out
}
