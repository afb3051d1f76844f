/**
 * Where migrating ranks go: the rules of `ompx migrate -r/-x/-t` (planMigration) and of the
 * app's requestMigrate() preferences (resolvePreferences), both checked
 * against the job as the coordinator sees it (MigrationView) before a round starts, so that a bad
 * request is one line of advice and never a half-done move. Pure functions, no I/O.
 */
import { ActionableError } from '../../errors'
import type { MigratePreference, MigrationMove, MigrationView } from '../snapc/migrate-types'
import { Occupancy } from './slot-occupancy'

export interface MigrateSelection {
  /** -r: ranks to move, in the order given. */
  ranks?: number[]
  /** -x: move every rank off these nodes. */
  off?: string[]
  /** -t: targets, used in order then round robin. */
  onto?: string[]
}

function noDuplicates<T>(list: T[], what: string): void {
  const seen = new Set<T>()
  for (const x of list) {
    if (seen.has(x)) throw new ActionableError(`${x} is listed twice in ${what}`)
    seen.add(x)
  }
}

/**
 * The moves of `ompx migrate`: the ranks of -r in their order, then those on the -x nodes (by
 * rank); rank i of that list goes to -t's target i (round robin past the end of -t), or without
 * -t to the node Occupancy.pick chooses, never its own node nor a -x node.
 */
export function planMigration(view: MigrationView, o: MigrateSelection): MigrationMove[] {
  const ranks = o.ranks ?? []
  const off = o.off ?? []
  const onto = o.onto ?? []
  if (ranks.length === 0 && off.length === 0) {
    throw new ActionableError('nothing to do: name the ranks to move (-r) or the nodes to leave (-x)')
  }
  const occ = new Occupancy(view)
  noDuplicates(ranks.map((r) => `rank ${r}`), '--ranks')
  noDuplicates(off, '--off')
  noDuplicates(onto, '--onto')
  for (const r of ranks) occ.checkRank(r)
  for (const n of off) if (!occ.has(n)) throw new ActionableError(`unknown node ${n} in --off: the job's nodes are ${occ.names()}`)
  for (const n of onto) {
    if (!occ.has(n)) throw new ActionableError(`--onto ${n} is not a node of the job's allocation (${occ.names()})`)
    if (off.includes(n)) throw new ActionableError(`${n} is in both --off and --onto`)
  }
  const movers = [...ranks]
  for (const p of [...view.procs].sort((a, b) => a.rank - b.rank)) {
    if (off.includes(p.node) && !movers.includes(p.rank)) movers.push(p.rank)
  }
  if (movers.length === 0) throw new ActionableError(`nothing to do: no rank runs on ${off.join(', ')}`)
  return movers.map((rank, i) => {
    const from = occ.at.get(rank)!
    if (onto.length === 0) return occ.move(rank, occ.pick(rank, new Set([from, ...off])), '')
    const to = onto[i % onto.length]!
    if (to === from) throw new ActionableError(`rank ${rank} already runs on ${to} (--onto ${to})`)
    return occ.move(rank, to, ' (--onto)')
  })
}

/**
 * The moves of the app's requestMigrate(). Each entry names a rank, the requester itself ("self")
 * or another one ("peer"); at most one place, a node (`onto`) or the node of a rank to join
 * (`nearRank`); and maybe `offNode`. Our reading of the seed's preference table (request_op
 * migrate of snapc_full_app.c), where a peer's "home" is the requester's node:
 *
 *   who   place                          offNode  result
 *   self  its own node                   no       stays: no move
 *   self  its own node                   yes      error: told to stay and to leave
 *   self  none                           either   leaves its node, for the mapper's choice
 *   self  another node                   either   moves there
 *   peer  the requester's node           no       joins the requester (no move if already there)
 *   peer  the requester's node           yes      error: told to join the requester and keep off
 *   peer  none                           no       joins the requester (the default)
 *   peer  none                           yes      the mapper's choice, neither its node nor the requester's
 *   peer  another node                   either   moves there (no move if it is already there)
 *
 * The requester's node and a nearRank's node are where that rank will be once its own entry is
 * applied, so a peer follows a requester that moves too. Errors: two different entries for one
 * rank, onto together with nearRank, offNode with the rank's own node as its place, a rank near
 * itself, entries whose places depend on each other in a circle; and, as for the tool, a rank out
 * of range, a node not in the allocation, a full target.
 */
export function resolvePreferences(view: MigrationView, prefs: MigratePreference[], requester: number): MigrationMove[] {
  const occ = new Occupancy(view)
  occ.checkRank(requester, 'requesting rank')
  const byRank = new Map<number, MigratePreference>()
  for (const p of prefs) {
    occ.checkRank(p.rank)
    if (p.nearRank !== undefined) occ.checkRank(p.nearRank, 'nearRank')
    if (p.nearRank === p.rank) throw new ActionableError(`rank ${p.rank} cannot move near itself`)
    if (p.onto !== undefined && !occ.has(p.onto)) throw new ActionableError(`${p.onto} is not a node of the job's allocation (${occ.names()})`)
    if (p.onto !== undefined && p.nearRank !== undefined) throw new ActionableError(`rank ${p.rank}: give onto or nearRank, not both`)
    const prev = byRank.get(p.rank)
    if (prev && (prev.onto !== p.onto || prev.nearRank !== p.nearRank || Boolean(prev.offNode) !== Boolean(p.offNode))) {
      throw new ActionableError(`conflicting migration preferences for rank ${p.rank}`)
    }
    byRank.set(p.rank, p)
  }
  const origin = new Map(occ.at)
  const moves: MigrationMove[] = []
  const done = new Set<number>()
  const resolving = new Set<number>()
  const finalNode = (rank: number): string => {
    if (byRank.has(rank)) resolve(rank)
    return occ.at.get(rank)!
  }
  const resolve = (rank: number): void => {
    if (done.has(rank)) return
    if (resolving.has(rank)) throw new ActionableError(`the migration preferences of ranks ${[...resolving].join(', ')} depend on each other`)
    resolving.add(rank)
    const p = byRank.get(rank)!
    const self = rank === requester
    const from = origin.get(rank)!
    const home = self ? from : finalNode(requester)
    const place = p.onto ?? (p.nearRank !== undefined ? finalNode(p.nearRank) : undefined)
    if (p.offNode && place !== undefined && (place === from || place === home)) {
      throw new ActionableError(`rank ${rank}: offNode contradicts ${place === from ? `staying on ${from}` : `joining rank ${requester} on ${home}`}`)
    }
    let to = place
    if (to === undefined) to = self || p.offNode ? occ.pick(rank, new Set([from, home])) : home
    if (to !== from) moves.push(occ.move(rank, to, ''))
    resolving.delete(rank)
    done.add(rank)
  }
  for (const rank of byRank.keys()) resolve(rank)
  return moves
}
