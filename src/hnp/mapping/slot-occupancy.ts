/**
 * The allocation's slots while a migration is planned (migrate-targets.ts): which node each rank
 * is on with the planned moves applied, how many slots are free where, which nodes are spares,
 * and the mapper's choice of a target. Kept apart so both planners (the tool's -r/-x/-t and the
 * app's preferences) count slots the same way.
 */
import { ActionableError } from '../../errors'
import type { MigrationMove, MigrationView } from '../snapc/migrate-types'

/**
 * The allocation's nodes and who is on them as moves get planned: a move takes a slot on its
 * target and frees one on its source. Spares are the nodes that ran no rank before any move.
 */
export class Occupancy {
  private used = new Map<string, number>()
  private slots = new Map<string, number>()
  /** rank -> node, with planned moves applied. */
  readonly at = new Map<number, string>()
  readonly spares = new Set<string>()

  constructor(private view: MigrationView) {
    for (const n of view.nodes) {
      this.slots.set(n.name, n.slots)
      this.used.set(n.name, 0)
    }
    for (const p of view.procs) {
      this.at.set(p.rank, p.node)
      this.used.set(p.node, (this.used.get(p.node) ?? 0) + 1)
    }
    for (const n of view.nodes) if (this.used.get(n.name) === 0) this.spares.add(n.name)
  }

  get size(): number {
    return this.view.procs.length
  }

  names(): string {
    return this.view.nodes.map((n) => n.name).join(', ') || 'none'
  }

  has(node: string): boolean {
    return this.slots.has(node)
  }

  free(node: string): number {
    return (this.slots.get(node) ?? 0) - (this.used.get(node) ?? 0)
  }

  /** "0 free slots (2 slots, 2 ranks)" */
  describe(node: string): string {
    const f = this.free(node)
    return `${f} free slot${f === 1 ? '' : 's'} (${this.slots.get(node) ?? 0} slots, ${this.used.get(node) ?? 0} ranks)`
  }

  checkRank(rank: number, what = 'rank'): void {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.size) {
      throw new ActionableError(`${what} ${rank} is out of range: the job has ranks 0-${this.size - 1}`)
    }
  }

  /** Plan `rank` onto `to`, which must have a free slot. */
  move(rank: number, to: string, what: string): MigrationMove {
    if (this.free(to) < 1) throw new ActionableError(`cannot move rank ${rank} onto ${to}${what}: it is full, ${this.describe(to)}`)
    const from = this.at.get(rank)!
    this.used.set(from, this.used.get(from)! - 1)
    this.used.set(to, this.used.get(to)! + 1)
    this.at.set(rank, to)
    return { rank, to }
  }

  /** The mapper's rule: spares first, then the most free slots, then allocation order; never a node of `avoid`. */
  pick(rank: number, avoid: Set<string>): string {
    let best: string | undefined
    const score = (n: string) => (this.spares.has(n) ? 1e9 : 0) + this.free(n)
    for (const { name } of this.view.nodes) {
      if (avoid.has(name) || this.free(name) < 1) continue
      if (best === undefined || score(name) > score(best)) best = name
    }
    if (best === undefined) {
      throw new ActionableError(`no free slot for rank ${rank} on another node of the allocation (${this.view.nodes.map((n) => `${n.name}: ${this.free(n.name)} free`).join(', ')})`)
    }
    return best
  }
}
