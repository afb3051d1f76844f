/**
 * The table and verdicts of the crs criu part of scripts/bench/checkpoint.ts (ckpt-criu.ts has
 * the measurements). Medians over the reps that completed.
 */
import type { CriuBench, CriuRep } from './ckpt-criu'
import { markdownTable, median } from './lib'

export interface CriuSummary {
  runs: number
  ompxDumpMs: number | null
  ompxCriuMs: number | null
  plainDumpMs: number | null
  plainDumpSyncMs: number | null
  ompxRestoreMs: number | null
  ompxRestoreSizeMs: number | null
  plainRestoreMs: number | null
  /** The same medians of --base (the baseline build), when it ran. */
  base: { ompxDumpMs: number | null; ompxRestoreMs: number | null; ompxRestoreSizeMs: number | null } | null
}

/** Issue #16's bounds: dump within 1.15x of `criu dump` + `sync`, restore (default verification) 1.10x. */
const TARGET = 1.15
const RESTORE_TARGET = 1.1

export function summarizeCriu(b: CriuBench): CriuSummary {
  const good = b.reps.filter((r) => r.ok)
  const med = (k: keyof CriuRep, from: (r: CriuRep) => Partial<CriuRep> | undefined = (r) => r) => {
    const xs = good.map((r) => from(r)?.[k]).filter((x): x is number => typeof x === 'number')
    return xs.length ? median(xs) : null
  }
  return {
    runs: good.length,
    ompxDumpMs: med('ompxDumpMs'),
    ompxCriuMs: med('criuMs'),
    plainDumpMs: med('plainDumpMs'),
    plainDumpSyncMs: med('plainDumpSyncMs'),
    ompxRestoreMs: med('ompxRestoreMs'),
    ompxRestoreSizeMs: med('ompxRestoreSizeMs'),
    plainRestoreMs: med('plainRestoreMs'),
    base: good.some((r) => r.base)
      ? { ompxDumpMs: med('ompxDumpMs', (r) => r.base), ompxRestoreMs: med('ompxRestoreMs', (r) => r.base), ompxRestoreSizeMs: med('ompxRestoreSizeMs', (r) => r.base) }
      : null,
  }
}

const ratio = (a: number | null, b: number | null) => (a !== null && b ? a / b : null)
const x = (r: number | null) => (r === null ? '' : `${r.toFixed(2)}x`)
const ms = (v: number | null) => (v === null ? 'fail' : `${Math.round(v)} ms`)

/** Verdicts against the targets (TARGET, RESTORE_TARGET), like for like first. */
export function criuVerdicts(s: CriuSummary): string[] {
  const out: string[] = []
  const judge = (r: number | null, bound = TARGET) => (r === null ? 'NOT MEASURED' : r <= bound ? 'MET' : 'MISSED')
  const durable = ratio(s.ompxDumpMs, s.plainDumpSyncMs)
  out.push(
    `crs criu dump within ${TARGET}x of plain criu: ${judge(durable)} against \`criu dump\` + \`sync\` (${x(durable)}; both durable when they return); ` +
      `${x(ratio(s.ompxDumpMs, s.plainDumpMs))} against \`criu dump\` alone, whose images are still in the page cache; ` +
      `criu inside ompx ${x(ratio(s.ompxCriuMs, s.plainDumpMs))} of plain criu`,
  )
  const bare = ratio(s.ompxRestoreSizeMs, s.plainRestoreMs)
  const full = ratio(s.ompxRestoreMs, s.plainRestoreMs)
  out.push(
    `crs criu restore within ${RESTORE_TARGET}x of plain criu: ${judge(bare, RESTORE_TARGET)} like for like (${x(bare)}, sstore_base_verify=size: plain criu checks nothing); ` +
      `${judge(full, RESTORE_TARGET)} with every checksum verified, the default (${x(full)})`,
  )
  if (s.base) {
    const b = s.base
    out.push(
      `--base (same reps): dump ${x(ratio(b.ompxDumpMs, s.plainDumpSyncMs))} of \`criu dump\` + \`sync\`, restore ${x(ratio(b.ompxRestoreMs, s.plainRestoreMs))} ` +
        `(size-only ${x(ratio(b.ompxRestoreSizeMs, s.plainRestoreMs))}) of plain criu`,
    )
  }
  return out
}

export function criuTable(s: CriuSummary, ranks: number, mb: number): string {
  const rows: string[][] = [
    [`plain criu, ${ranks} dumps/restores at once`, ms(s.plainDumpMs), '1.00x', ms(s.plainRestoreMs), '1.00x'],
    ['plain criu dump + sync', ms(s.plainDumpSyncMs), x(ratio(s.plainDumpSyncMs, s.plainDumpMs)), '', ''],
    ['ompx (crs criu, central store)', ms(s.ompxDumpMs), x(ratio(s.ompxDumpMs, s.plainDumpMs)), ms(s.ompxRestoreMs), x(ratio(s.ompxRestoreMs, s.plainRestoreMs))],
    ['ompx, sstore_base_verify=size', '', '', ms(s.ompxRestoreSizeMs), x(ratio(s.ompxRestoreSizeMs, s.plainRestoreMs))],
    ...(s.base
      ? [
          ['ompx --base', ms(s.base.ompxDumpMs), x(ratio(s.base.ompxDumpMs, s.plainDumpMs)), ms(s.base.ompxRestoreMs), x(ratio(s.base.ompxRestoreMs, s.plainRestoreMs))],
          ['ompx --base, sstore_base_verify=size', '', '', ms(s.base.ompxRestoreSizeMs), x(ratio(s.base.ompxRestoreSizeMs, s.plainRestoreMs))],
        ]
      : []),
    ['criu dump inside ompx (slowest rank)', ms(s.ompxCriuMs), x(ratio(s.ompxCriuMs, s.plainDumpMs)), '', ''],
  ]
  return [
    `crs criu: ${ranks} ranks x ${mb} MiB (C program), median of ${s.runs} reps`,
    '',
    markdownTable(['case', 'dump', 'vs plain', 'restore', 'vs plain'], rows),
    '',
    'dump: ompx = `ompx checkpoint --term` spawn to exit (images checksummed, fsync\'ed, global.json committed);',
    'plain = the criu processes, spawn to exit. restore: ompx = `ompx restart` spawn until every rank printed',
    'a line after its restore; plain = `criu restore -d`, spawn to exit (the tree runs).',
  ].join('\n')
}
