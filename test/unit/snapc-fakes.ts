/**
 * Fakes for the checkpoint coordinators' ports, shared by the global-snapc* and local-snapc* unit
 * tests: a registry of the real built-ins (plus a CRS whose capture each test scripts), a JobPort
 * that records what the global coordinator broadcasts, and a harness that builds a GlobalSnapc
 * over a temp dir and plays the node daemons (local-snapc-fakes.ts has the LocalSnapc side).
 * Not a test file itself (no .test.ts): nothing here spawns a process.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BUILTIN_PLUGINS } from '../../plugins/builtin'
import { AppServices } from '../../src/hnp/snapc/app-services'
import type { CkptOptions, CkptState } from '../../src/hnp/snapc/ckpt-round'
import { GlobalSnapc, type JobPort, type SnapshotPlan } from '../../src/hnp/snapc/global-snapc'
import { registerCoreParams } from '../../src/params/core'
import { Params } from '../../src/params/params'
import { Registry } from '../../src/plugins/registry'
import type { BuiltinPlugin, CaptureRequest, CaptureResult, CrsPlugin } from '../../src/plugins/types'
import type { ProcInfo } from '../../src/runtime/job'
import { sealRankDir } from '../../src/sstore/local-snapshot'
import { sendFiles } from '../../src/sstore/file-sender'
import { readGlobalMeta } from '../../src/sstore/global-meta'
import { receiverSink } from '../../src/sstore/sinks'
import { GLOBAL_META, META_VERSION, type GlobalMeta, type RankMeta } from '../../src/sstore/types'
import type { MessageOf, SnapcToNode } from '../../src/wire/messages'

export const JOBID = '1.1'
export const REF = 'ompx_global_snapshot_1.1.ckpt'

export async function loadRegistry(root: string, extra: BuiltinPlugin[] = [], cli: [string, string][] = []) {
  const params = new Params({ home: join(root, 'home'), cwd: root, env: {}, cli })
  registerCoreParams(params)
  const registry = await Registry.load({ params, execPath: join(root, 'ompx'), builtins: [...BUILTIN_PLUGINS, ...extra] })
  return { params, registry }
}

/** A transparent CRS ('fake') whose capture the test sets per case through `fake.capture`. */
export function fakeCrs(): { fake: { capture: (req: CaptureRequest) => Promise<CaptureResult> }; plugin: BuiltinPlugin } {
  const fake = { capture: async (_req: CaptureRequest): Promise<CaptureResult> => ({}) }
  const crs: CrsPlugin = {
    kind: 'crs',
    name: 'fake',
    priority: 0,
    description: 'test CRS: writes what the test says',
    needsApp: false,
    notCheckpointable: () => null,
    launch: () => Promise.reject(new Error('fake crs launches nothing')),
    capture: (req) => fake.capture(req),
    captureEndsRankOnTerm: false,
    restore: () => Promise.reject(new Error('fake crs restores nothing')),
  }
  return { fake, plugin: { file: 'test/unit/snapc-fakes.ts', factory: () => crs } }
}

const proc = (rank: number, node: string): ProcInfo => ({ rank, app: 0, node, localRank: rank, localSize: 1, nodeRank: 0 })

type Ckpt = MessageOf<'hnp.ckpt'>

/** The job as the global coordinator sees it: records broadcasts, signals and --term endings. */
export class FakeJobPort implements JobPort {
  readonly jobid = JOBID
  readonly sent: Ckpt[] = []
  readonly signals: { sig: NodeJS.Signals; ranks?: number[] }[] = []
  ended = 0
  isEnding = false
  /** Called on every broadcast (e.g. to look at the disk at that very moment). */
  onBroadcast: (m: Ckpt) => void = () => {}
  private readonly list: ProcInfo[]

  constructor(ranks: number[], node = 'n1') {
    this.list = ranks.map((r) => proc(r, node))
  }
  procs(): ProcInfo[] {
    return this.list
  }
  broadcast(msg: SnapcToNode): void {
    if (msg.t !== 'hnp.ckpt') throw new Error(`unexpected broadcast ${msg.t}`)
    this.sent.push(msg)
    this.onBroadcast(msg)
  }
  signal(sig: NodeJS.Signals, ranks?: number[]): void {
    this.signals.push({ sig, ranks })
  }
  endAfterCheckpoint(): void {
    this.ended++
  }
  ending(): boolean {
    return this.isEnding
  }
  /** "op" or "op:text" of every broadcast, in order. */
  ops(): string[] {
    return this.sent.map((m) => (m.text ? `${m.op}:${m.text}` : m.op))
  }
}

/** A daemon's report on one rank. */
export function report(rank: number, seq: number, op: 'prep' | 'captured' | 'synced', status: 'ok' | 'stall' | 'null' | 'error', extra: { message?: string; snapshot?: RankMeta } = {}): MessageOf<'orted.ckpt'> {
  return { t: 'orted.ckpt', jobid: JOBID, rank, seq, op, status, ...extra }
}

/** Write `files` (relative path -> content) into `dir` and seal it as a node daemon would. */
export async function writeAndSeal(dir: string, rank: number, files: Record<string, string>, node = 'n1'): Promise<RankMeta> {
  mkdirSync(dir, { recursive: true })
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  return sealRankDir(dir, { rank, node, crs: 'self', captureMs: 1 })
}

/** Poll until `cond` holds (events arrive through sockets and the file system). */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(5)
  }
}

/** Let pending promise callbacks and file-system work run. */
export const settle = (ms = 30) => Bun.sleep(ms)

// ---- the global coordinator, with its ports faked -------------------------------------------

export interface GlobalHarness {
  gs: GlobalSnapc
  port: FakeJobPort
  services: AppServices
  plan: SnapshotPlan
  states: CkptState[]
  progress: (s: CkptState) => void
  /** The dir where the central store (or the HNP's receiver) puts a rank's files. */
  rankDir(seq: number, rank: number): string
  globalJson(): GlobalMeta | null
}

let harnesses = 0

/** A GlobalSnapc over a fresh global dir; `inited` ranks passed INIT (all by default). */
export function newGlobal(registry: Registry, root: string, o: Partial<SnapshotPlan> & { ranks?: number[]; inited?: number[] } = {}): GlobalHarness {
  const { ranks = [0, 1], inited = ranks, ...over } = o
  const globalDir = join(root, `global-${++harnesses}`)
  const port = new FakeJobPort(ranks)
  const h = { port, states: [] as CkptState[] } as GlobalHarness
  h.services = new AppServices({
    size: ranks.length,
    reply: () => {},
    checkpoint: () => Promise.reject(new Error('not in this test')),
    checkpointRunning: () => h.gs.inProgress,
    fenceDone: () => {},
    migrate: () => Promise.reject(new Error('not in this test')),
  })
  h.plan = {
    globalDir,
    ref: REF,
    crs: 'self',
    sstore: 'central',
    keep: 0,
    timeoutSec: 60,
    base: { version: META_VERSION, ref: REF, jobid: JOBID, created: 1, apps: [{ index: 0, np: ranks.length, argv: ['./app'], env: {}, cwd: root }], nodes: [{ name: 'n1', slots: 4 }], params: { crs: 'self' } },
    ...over,
  }
  h.gs = new GlobalSnapc(port, h.services, registry, h.plan)
  h.progress = (s) => h.states.push(s)
  h.rankDir = (seq, rank) => join(globalDir, REF, String(seq), `rank_${rank}`)
  h.globalJson = () => readGlobalMeta(join(globalDir, REF, GLOBAL_META))
  for (const rank of inited) h.services.request({ t: 'orted.app', jobid: JOBID, rank, id: 1, op: 'init' })
  return h
}

/** Every rank answers PREP OK for `seq`. */
export function prepAll(h: GlobalHarness, seq: number): void {
  for (const p of h.port.procs()) h.gs.report(report(p.rank, seq, 'prep', 'ok'))
}

/** Central store: each rank's files written in place and sealed, then reported captured. */
export async function captureCentral(h: GlobalHarness, seq: number, tag = 'state'): Promise<RankMeta[]> {
  const metas: RankMeta[] = []
  for (const p of h.port.procs()) metas.push(await writeAndSeal(h.rankDir(seq, p.rank), p.rank, { 'img/mem.bin': `${tag} of rank ${p.rank} seq ${seq}` }))
  for (const m of metas) h.gs.report(report(m.rank, seq, 'captured', 'ok', { snapshot: m }))
  return metas
}

/** One whole checkpoint in the central store; resolves with its result. */
export async function runCentral(h: GlobalHarness, opts: Partial<CkptOptions> = {}) {
  const done = h.gs.request({ term: false, stop: false, origin: 'tool', ...opts }, h.progress)
  const seq = h.port.sent.at(-1)!.store.seq
  prepAll(h, seq)
  await captureCentral(h, seq)
  for (const p of h.port.procs()) h.gs.report(report(p.rank, seq, 'synced', 'ok'))
  return done
}

/** Stage store: a node-local rank dir, written and sealed (not yet reported). */
export interface Staged {
  dir: string
  meta: RankMeta
}
export async function stageLocal(root: string, seq: number, rank: number, tag = 'staged'): Promise<Staged> {
  const dir = join(root, `node-${harnesses}`, String(seq), `rank_${rank}`)
  return { dir, meta: await writeAndSeal(dir, rank, { 'a.bin': `${tag} a ${rank}`.repeat(50), 'sub/b.bin': `${tag} b ${rank}` }) }
}

/** Push a staged rank's files into the HNP's receiver, then report it synced. */
export async function syncStaged(h: GlobalHarness, seq: number, { dir, meta }: Staged): Promise<void> {
  const rx = h.gs.receiver({ ref: REF, seq, rank: meta.rank })
  if (!rx) throw new Error(`no receiver for rank ${meta.rank} seq ${seq}`)
  await sendFiles(dir, meta.files, receiverSink(rx))
  h.gs.report(report(meta.rank, seq, 'synced', 'ok'))
}
