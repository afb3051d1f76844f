/**
 * A node's share of the job's PMI fences (barrier_in, kvs-fence): the node collects its local
 * ranks' puts and barrier entries, and once every local rank has entered fence N it sends ONE
 * `orted.fence` to the HNP (the ranks it speaks for and their puts). The HNP's app services
 * (src/hnp/snapc/app-services.ts) join the nodes' fences, store the puts in the job's kv store
 * and answer every node with all the fence's puts; the node keeps them in its cache, where the
 * ranks' gets are served without a round trip. So a fence costs one message per node each way,
 * whatever the number of ranks.
 */
import type { MessageOf, NodeToSnapc } from '../../wire/messages'

/**
 * Most bytes of puts a node holds before its next fence (the default of snapc_kv_max_bytes): a
 * rank putting without end is refused here, before the HNP's own limit could say so.
 */
const MAX_PENDING_BYTES = 64 * 1024 * 1024

export class NodeFence {
  /** What every rank of this node, and the job's fences, made visible: served to gets. */
  readonly cache = new Map<string, string>()
  /** Puts of local ranks not yet sent up. */
  private pending: [string, string][] = []
  private pendingBytes = 0
  /** Per fence seq, the local ranks that entered it and the callbacks that release them. */
  private waiting = new Map<number, Map<number, () => void>>()
  /** How many fences each rank entered (its next fence's seq). */
  private entered = new Map<number, number>()

  constructor(
    private readonly jobid: string,
    /** The ranks of this job on this node that take part in fences. */
    private readonly local: () => number[],
    private readonly report: (m: NodeToSnapc) => void,
  ) {}

  /** Keep a local rank's put until the next fence; why not, when the node holds too much. */
  put(key: string, value: string): string | null {
    const bytes = key.length + value.length
    if (this.pendingBytes + bytes > MAX_PENDING_BYTES) return `more than ${MAX_PENDING_BYTES} bytes of puts before a fence`
    this.pendingBytes += bytes
    this.cache.set(key, value)
    this.pending.push([key, value])
    return null
  }

  /** `rank` entered its next fence; `release` is called when the whole job has. */
  enter(rank: number, release: () => void): void {
    const seq = this.entered.get(rank) ?? 0
    this.entered.set(rank, seq + 1)
    const list = this.waiting.get(seq) ?? new Map<number, () => void>()
    list.set(rank, release)
    this.waiting.set(seq, list)
    this.maybeSend(seq)
  }

  /** A local rank is gone: fences no longer wait for it here (the job is ending anyway). */
  rankGone(): void {
    for (const seq of this.waiting.keys()) this.maybeSend(seq)
  }

  private sent = new Set<number>()

  private maybeSend(seq: number): void {
    const list = this.waiting.get(seq)
    if (!list || this.sent.has(seq)) return
    if (!this.local().every((r) => list.has(r))) return
    this.sent.add(seq)
    const kv = this.pending
    this.pending = []
    this.pendingBytes = 0
    this.report({ t: 'orted.fence', jobid: this.jobid, seq, ranks: [...list.keys()], kv })
  }

  /** The HNP joined fence `seq`: keep every node's puts, let the local ranks out. */
  done(m: MessageOf<'hnp.fence'>): void {
    const list = this.waiting.get(m.seq)
    this.waiting.delete(m.seq)
    this.sent.delete(m.seq)
    if (!m.ok) {
      // The job's kv store refused the puts: nobody can go on, the job ends (MPI cannot recover).
      const rank = [...(list?.keys() ?? [])][0] ?? -1
      return this.report({ t: 'orted.abort', jobid: this.jobid, rank, code: 1, message: `PMI fence ${m.seq} failed: ${m.text ?? 'refused'}` })
    }
    for (const [k, v] of m.kv) this.cache.set(k, v)
    for (const release of list?.values() ?? []) release()
  }
}
