/**
 * The options of `ompx migrate` (orte-migrate's names: -r ranks, -x off, -t onto, -s status,
 * -v verbose) and the syntax of their lists: ranks as `2,5` and ranges `4-7`, nodes comma
 * separated. Only the syntax is checked here; whether a rank or node exists is the HNP's
 * question (hnp/mapping/migrate-targets.ts), as only it knows the job.
 */
import { ActionableError } from '../errors'
import { MAX_RANKS } from '../params/limits'
import type { OptionSpec, OptionValues } from './scan'
import { jsonOption, mcaOption, pluginDirOption } from './shared'

export const migrateSpecs = [
  { name: 'ranks', aliases: ['r'], arity: 1, valueHint: 'list', description: 'Ranks to move, e.g. 2,5 or 4-7' },
  { name: 'off', aliases: ['x'], arity: 1, valueHint: 'nodes', description: 'Move every rank off these nodes (comma separated)' },
  { name: 'onto', aliases: ['t'], arity: 1, valueHint: 'nodes', description: 'Target nodes, used in order then round robin (default: the mapper picks, spares first)' },
  { name: 'status', aliases: ['s'], description: 'Print progress as the migration moves through its states' },
  { name: 'verbose', aliases: ['v'], description: 'Print the request first (implies --status) and debug logging to stderr' },
  { name: 'timing', description: 'Print how long each phase took' },
  { name: 'hold', description: 'crs criu: stop the ranks that do not move (SIGSTOP) for the duration of the move' },
  { name: 'keep-images', description: 'Keep the migration images after a successful move (debugging)' },
  { name: 'jobid', arity: 1, valueHint: 'id', description: 'Which job, when the HNP runs several (ompx ps shows them)' },
  jsonOption,
  mcaOption,
  pluginDirOption,
] as const satisfies readonly OptionSpec[]

export type MigrateOptionValues = OptionValues<typeof migrateSpecs>

/** "2,5,4-7" -> [2, 5, 4, 5, 6, 7]: the order and any repetition are kept (the planner refuses duplicates). */
export function parseRankList(text: string, flag = '--ranks'): number[] {
  const out: number[] = []
  for (const raw of text.split(',')) {
    const part = raw.trim()
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!m) throw new ActionableError(`${flag}: "${part}" is not a rank or a range of ranks (use e.g. 2,5 or 4-7)`)
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) throw new ActionableError(`${flag}: range "${part}" runs backwards`)
    if (hi >= MAX_RANKS) throw new ActionableError(`${flag}: rank ${hi} is beyond any job (at most ${MAX_RANKS - 1})`)
    for (let r = lo; r <= hi; r++) out.push(r)
  }
  return out
}

/** "n2,n3" -> ["n2", "n3"]; empty names are refused. */
export function parseNodeList(text: string, flag: string): string[] {
  const out = text.split(',').map((s) => s.trim())
  if (out.some((s) => s === '')) throw new ActionableError(`${flag}: "${text}" has an empty node name (use e.g. n2,n3)`)
  return out
}

/** What the tool asks the HNP for, from its options. */
export function migrateSelection(o: MigrateOptionValues): { ranks: number[]; off: string[]; onto: string[] } {
  return {
    ranks: o.ranks === undefined ? [] : parseRankList(o.ranks),
    off: o.off === undefined ? [] : parseNodeList(o.off, '--off'),
    onto: o.onto === undefined ? [] : parseNodeList(o.onto, '--onto'),
  }
}
