/**
 * What the runtime offers ranks through their app coordinators, job-wide: the INIT and FIN
 * barriers (a job is checkpointable between them), a key-value store with blocking get, named
 * barriers, and app-initiated checkpoint and migration requests. Requests arrive from the
 * daemons as `orted.app`; answers go back as `hnp.app` to the rank's daemon. The PMI servers of
 * the nodes use the same store and barriers node by node: `orted.fence` carries a node's ranks
 * and puts, `hnp.fence` the whole fence's puts back (src/orted/pmi/node-fence.ts).
 *
 * The kv store lives in the HNP's memory and is saved with every checkpoint, so it is bounded:
 * a value at most KV_VALUE_MAX bytes (as the app protocol says), and keys plus values of the
 * whole job at most `snapc_kv_max_bytes`. A PUT past either limit fails with a message the SDK
 * throws; the store is left as it was.
 */
import { errorMessage } from '../../errors'
import type { MessageOf } from '../../wire/messages'
import { decodePreferences } from '../../orted/snapc/app-protocol'
import type { MigratePreference, MigrationResult } from './migrate-types'

export interface AppServicesPort {
  size: number
  reply(rank: number, id: number, ok: boolean, value?: Uint8Array, text?: string): void
  /** An app asked for a checkpoint (request_op); resolves with "<seq> <ref>". */
  checkpoint(term: boolean): Promise<string>
  /** Whether a checkpoint is running now (FIN waits for it: FIN_ACK). */
  checkpointRunning(): boolean
  /**
   * An app asked to move ranks (request_op migrate): entries as the app gave them (shape checked,
   * ranks in range; conflicts are the planner's to refuse). Resolves when the move is over with
   * the answer's text (migrationOutcomeText), rejects with a one-line reason.
   */
  migrate(prefs: MigratePreference[], requester: number): Promise<string>
  /** PMI fence `seq` is complete (or refused): tell `node`, with every node's puts of it. */
  fenceDone(node: string, seq: number, ok: boolean, kv: [string, string][], text?: string): void
}

/** PMI keys live in the job's kv store beside the SDK's, under their own prefix. */
const PMI_KEY_PREFIX = 'pmi:'

/** One PMI fence being joined: the nodes in so far, how many ranks they speak for, their puts. */
interface Fence {
  nodes: Set<string>
  ranks: Set<number>
  kv: [string, string][]
}

/** What requestMigrate() resolves with: the result as JSON (the SDK's parseOutcome reads it). */
export function migrationOutcomeText(r: MigrationResult): string {
  return JSON.stringify({ moves: r.moves, bytes: r.bytes, totalMs: r.totalMs, timing: r.timing })
}

type Pending = { rank: number; id: number }

/** Longest kv value in bytes (MAX_VALUE of the app protocol, src/app/lines.ts). */
export const KV_VALUE_MAX = 1024 * 1024
/** Default of snapc_kv_max_bytes: keys plus values of one job. */
export const KV_MAX_BYTES_DEFAULT = 64 * 1024 * 1024

/** "1048576 (1 MiB)" for whole MiB, else just the number. */
const sized = (n: number) => (n >= 1048576 && n % 1048576 === 0 ? `${n} (${n / 1048576} MiB)` : String(n))

export class AppServices {
  /** Ranks whose app coordinator is connected to their daemon. */
  readonly linked = new Set<number>()
  readonly inited = new Set<number>()
  readonly finalized = new Set<number>()
  private kv = new Map<string, Uint8Array>()
  /** Bytes of every key (UTF-8) and value in `kv`. */
  private kvBytes = 0
  private getters = new Map<string, Pending[]>()
  private barriers = new Map<string, Pending[]>()
  private initWaiters: Pending[] = []
  private finWaiters: Pending[] = []
  private fences = new Map<number, Fence>()
  /** Per rank, how often its app coordinator went away: an answer for an older connection is dropped. */
  private epochs = new Map<number, number>()

  constructor(
    private port: AppServicesPort,
    kv?: Record<string, string>,
    /** snapc_kv_max_bytes of the job. */
    private readonly kvMaxBytes = KV_MAX_BYTES_DEFAULT,
  ) {
    // After a restart the store holds what the ranks had put when the snapshot was taken (even
    // if that is more than this job's limit: it only stops growing).
    for (const [k, v] of Object.entries(kv ?? {})) this.store(k, Buffer.from(v, 'base64'))
  }

  /** Bytes the kv store holds now (keys and values). */
  get kvSize(): number {
    return this.kvBytes
  }

  /** How much the store grows when `key` is set to `value` (a new key counts its own bytes). */
  private growth(key: string, value: Uint8Array): number {
    const old = this.kv.get(key)
    return value.length + (old ? -old.length : Buffer.byteLength(key))
  }

  private store(key: string, value: Uint8Array): void {
    this.kvBytes += this.growth(key, value)
    this.kv.set(key, value)
  }

  /** Why storing `value` under `key` would break a limit, or null. */
  private overLimit(key: string, value: Uint8Array): string | null {
    if (value.length > KV_VALUE_MAX) return `the value is ${value.length} bytes, more than the ${sized(KV_VALUE_MAX)} bytes a kv value may hold`
    const after = this.kvBytes + this.growth(key, value)
    if (after <= this.kvMaxBytes) return null
    return `the job's kv store is full: it holds ${this.kvBytes} bytes, this put would make it ${after}, more than snapc_kv_max_bytes ${sized(this.kvMaxBytes)}`
  }

  /** Every rank passed INIT: the job may be checkpointed (if its CRS allows). */
  get allInited(): boolean {
    return this.inited.size === this.port.size
  }

  link(rank: number, up: boolean): void {
    if (up) return void this.linked.add(rank)
    this.linked.delete(rank)
    this.epochs.set(rank, this.epoch(rank) + 1)
  }

  private epoch(rank: number): number {
    return this.epochs.get(rank) ?? 0
  }

  request(m: MessageOf<'orted.app'>): void {
    const { rank, id } = m
    const ok = (value?: Uint8Array, text?: string) => this.port.reply(rank, id, true, value, text)
    if (m.op === 'migrate') return this.migrate(rank, id, m.value)
    switch (m.op) {
      case 'init':
        this.inited.add(rank)
        this.initWaiters.push({ rank, id })
        if (this.allInited) this.release(this.initWaiters.splice(0))
        return
      case 'fin':
        this.finalized.add(rank)
        if (this.port.checkpointRunning()) this.finWaiters.push({ rank, id })
        else ok()
        return
      case 'put': {
        if (!m.key) return this.port.reply(rank, id, false, undefined, 'PUT needs a key')
        const value = m.value ?? new Uint8Array()
        const over = this.overLimit(m.key, value)
        if (over) return this.port.reply(rank, id, false, undefined, over)
        this.store(m.key, value)
        const waiting = this.getters.get(m.key) ?? []
        this.getters.delete(m.key)
        for (const w of waiting) this.port.reply(w.rank, w.id, true, this.kv.get(m.key))
        return ok()
      }
      case 'get': {
        if (!m.key) return this.port.reply(rank, id, false, undefined, 'GET needs a key')
        const v = this.kv.get(m.key)
        if (v) return ok(v)
        const list = this.getters.get(m.key) ?? []
        list.push({ rank, id })
        this.getters.set(m.key, list)
        return
      }
      case 'barrier': {
        const name = m.key ?? ''
        const list = this.barriers.get(name) ?? []
        list.push({ rank, id })
        if (list.length >= this.port.size) {
          this.barriers.delete(name)
          this.release(list)
        } else this.barriers.set(name, list)
        return
      }
      case 'checkpoint':
        this.port.checkpoint(Boolean(m.term)).then(
          (text) => ok(undefined, text),
          (err) => this.port.reply(rank, id, false, undefined, errorMessage(err)),
        )
    }
  }

  /**
   * request_op migrate. A requester that moves loses its connection (its old process ends): the
   * answer is then dropped rather than sent to the new process, which never asked.
   */
  private migrate(rank: number, id: number, value: Uint8Array | undefined): void {
    const prefs = decodePreferences(value, this.port.size)
    if (typeof prefs === 'string') return this.port.reply(rank, id, false, undefined, prefs)
    const epoch = this.epoch(rank)
    const answer = (ok: boolean, text: string) => {
      if (this.epoch(rank) === epoch) this.port.reply(rank, id, ok, undefined, text)
    }
    let asked: Promise<string>
    try {
      asked = this.port.migrate(prefs, rank)
    } catch (err) {
      asked = Promise.reject(err)
    }
    asked.then(
      (text) => answer(true, text),
      (err) => answer(false, errorMessage(err) || 'the migration failed'),
    )
  }

  /**
   * A node's share of PMI fence `seq`. Once the nodes together speak for every rank, the puts
   * enter the job's kv store (its limits apply: a refused fence is answered ok=false, and the
   * node aborts the job) and every node gets all of them.
   */
  fence(node: string, m: { seq: number; ranks: number[]; kv: [string, string][] }): void {
    const f = this.fences.get(m.seq) ?? { nodes: new Set<string>(), ranks: new Set<number>(), kv: [] }
    this.fences.set(m.seq, f)
    f.nodes.add(node)
    for (const r of m.ranks) f.ranks.add(r)
    for (const e of m.kv) f.kv.push(e)
    if (f.ranks.size < this.port.size) return
    this.fences.delete(m.seq)
    let refused: string | null = null
    for (const [k, v] of f.kv) {
      const key = PMI_KEY_PREFIX + k
      const value = Buffer.from(v)
      refused = this.overLimit(key, value)
      if (refused) break
      this.store(key, value)
    }
    for (const n of f.nodes) this.port.fenceDone(n, m.seq, refused === null, refused === null ? f.kv : [], refused ?? undefined)
  }

  /** A checkpoint ended: ranks that finalized meanwhile get their FIN_ACK now. */
  checkpointEnded(): void {
    this.release(this.finWaiters.splice(0))
  }

  /** A rank is gone: it will never INIT, FIN or answer; forget its pending requests. */
  rankGone(rank: number): void {
    this.linked.delete(rank)
    this.finalized.add(rank)
  }

  /** The kv store as saved in a snapshot (base64 values). */
  snapshotKv(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [k, v] of this.kv) out[k] = Buffer.from(v).toString('base64')
    return out
  }

  private release(list: Pending[]): void {
    for (const w of list) this.port.reply(w.rank, w.id, true)
  }
}
