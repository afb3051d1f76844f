/**
 * The wire message catalog: ONE table (`CATALOG`) maps each message type `t` to the shape of its
 * fields. The TypeScript union `Message` is derived from that table and so is the runtime
 * validator, so adding a message type is one line here and cannot drift between the two.
 * Checks are light on purpose (field presence and primitive types, recursively for nested
 * shapes): they stop a buggy or hostile peer from handing the runtime something of the wrong
 * type, not from sending nonsense values.
 */
import { untrusted } from '../log'
import { arrayOf, bool, bytes, checkShape, type Fields, type FieldT, isPlainObject, nullable, num, oneOf, optional, recordOf, type Shape, shape, type Simplify, str, tuple, unknown_ } from './fields'

/** Bumped on any incompatible change; peers of different versions refuse each other in the handshake. */
export const WIRE_PROTOCOL_VERSION = 3

export const ROLES = ['orted', 'tool', 'run'] as const
export type Role = (typeof ROLES)[number]

// ---- nested shapes ---------------------------------------------------------------------------

const launchSpec = shape({
  rank: num,
  app: num,
  node: str,
  localRank: num,
  localSize: num,
  nodeRank: num,
  argv: arrayOf(str),
  cwd: str,
  /** The app context's variables (-x); the node adds its own environment and the job's identity. */
  appEnv: recordOf(str),
  stdin: bool,
  /** Set when the rank restarts from a snapshot: where its image is (see sstore restart staging). */
  restart: optional(shape({ dir: str, staged: bool, migrated: optional(bool) })),
  /** The job's CRS (it may change how a rank is started and captured). */
  crs: optional(str),
})
export type LaunchSpecWire = FieldT<typeof launchSpec>

const jobSummary = shape({
  jobid: str,
  app: str,
  state: str,
  started: num,
  procs: arrayOf(shape({ rank: num, node: str, pid: nullable(num), state: str, startedAt: nullable(num) })),
  /** A job spawned by another (MPI_Comm_spawn): the spawning job. */
  parent: optional(str),
})
export type JobSummary = FieldT<typeof jobSummary>

/** A job submitted to a persistent HNP (ompx run --hnp): what `ompx run` parsed. */
const submitApp = shape({ np: optional(num), argv: arrayOf(str), env: recordOf(str), cwd: str })
const submitOptions = shape({
  mapBy: optional(str),
  oversubscribe: bool,
  timeoutSec: optional(num),
  errmgrContinue: bool,
  displayMap: bool,
})
export type SubmitApp = FieldT<typeof submitApp>
export type SubmitOptions = FieldT<typeof submitOptions>

/** One file of a local snapshot, as recorded in metadata (see src/sstore/types.ts). */
const snapshotFile = shape({ path: str, size: num, sum: str })
/** What a node reports about one rank's local snapshot once it is captured. */
const rankSnapshot = shape({
  rank: num,
  node: str,
  crs: str,
  files: arrayOf(snapshotFile),
  bytes: num,
  captureMs: num,
  info: optional(recordOf(unknown_)),
  /** The rank's partial output lines at the capture (base64), carried over a restart. */
  outputTail: optional(shape({ stdout: optional(str), stderr: optional(str) })),
})
export type RankSnapshotWire = FieldT<typeof rankSnapshot>

/** Where a checkpoint's local snapshots go: enough for a node to run its sstore plugin. */
const storeSpec = shape({ sstore: str, globalDir: str, ref: str, seq: num, crs: str })
export type StoreSpec = FieldT<typeof storeSpec>

/** One moved rank of a migration (MovedRank of src/hnp/snapc/migrate-types.ts). */
const movedRank = shape({ rank: num, from: str, to: str, oldPid: num, newPid: num, bytes: num, downtimeMs: num })

/** What a node's PMI server needs of the whole job (docs/pmi.md). */
const pmiJob = shape({
  mode: oneOf('fd', 'port'),
  processMapping: str,
  /** A spawned job: its parent's preput values (PARENT_ROOT_PORT_NAME), readable before any fence. */
  preput: optional(arrayOf(tuple(str, str))),
})
export type PmiJobWire = FieldT<typeof pmiJob>

/** One app of a spawn request (PMI-1 `mcmd=spawn` block): its size, argv and MPI_Info pairs. */
const spawnApp = shape({ np: num, argv: arrayOf(str), info: arrayOf(tuple(str, str)) })
export type SpawnAppWire = FieldT<typeof spawnApp>

// ---- the catalog -----------------------------------------------------------------------------

export const CATALOG = {
  // handshake (see auth.ts)
  hello: { v: num, nonce: bytes },
  auth: { v: num, role: oneOf(...ROLES), nonce: bytes, mac: bytes },
  welcome: { mac: bytes },
  reject: { reason: str },
  // daemon -> hnp
  'orted.register': { node: str, pid: num, version: str, address: str },
  'orted.launched': { jobid: str, pids: arrayOf(tuple(num, num)) },
  'orted.output': { jobid: str, rank: num, stream: oneOf('stdout', 'stderr'), data: bytes },
  'orted.exit': { jobid: str, rank: num, pid: num, node: str, code: nullable(num), signal: nullable(str) },
  'orted.error': { jobid: optional(str), message: str },
  // the daemon caught snapc_checkpoint_on_signal (Slurm's time-limit warning reaches the steps)
  'orted.ckpt-signal': { node: str, signal: str },
  // hnp -> daemon
  'hnp.launch': { jobid: str, procs: arrayOf(launchSpec), size: num, universeSize: num, pmi: optional(pmiJob) },
  'hnp.signal': { jobid: str, signal: str, ranks: optional(arrayOf(num)) },
  'hnp.stdin': { jobid: str, rank: num, data: nullable(bytes) },
  /** The HNP took `bytes` more of the job's output from this node: it may send as much more (src/orted/output-forwarder.ts). */
  'hnp.output-ack': { jobid: str, bytes: num },
  'hnp.kill-job': { jobid: str },
  /** The job is over: the node drops what it kept for it (app socket, staged images, session dir). */
  'hnp.job-end': { jobid: str },
  'hnp.shutdown': {},
  // checkpoint protocol, hnp <-> node (src/hnp/snapc, src/orted/snapc)
  'hnp.ckpt': {
    jobid: str,
    op: oneOf('prep', 'capture', 'release', 'abort'),
    store: storeSpec,
    /** Ranks taking part (each node acts on those it runs). */
    ranks: arrayOf(num),
    options: arrayOf(str),
    /** For release: continue | term ; for abort: why. */
    text: optional(str),
    /** A migration round: the ranks that move (their PREP also says `migrating`). */
    movers: optional(arrayOf(num)),
  },
  'orted.ckpt': {
    jobid: str,
    rank: num,
    seq: num,
    /** prep: stage-1 answer; captured: image written locally; synced: image is in the global store. */
    op: oneOf('prep', 'captured', 'synced'),
    status: oneOf('ok', 'stall', 'null', 'error'),
    message: optional(str),
    snapshot: optional(rankSnapshot),
  },
  /** A rank's app-coordinator request forwarded to the HNP (INIT/FIN barriers, kv, request_op). */
  'orted.app': {
    jobid: str,
    rank: num,
    id: num,
    op: oneOf('init', 'fin', 'put', 'get', 'barrier', 'checkpoint', 'migrate'),
    key: optional(str),
    value: optional(bytes),
    term: optional(bool),
  },
  'hnp.app': { jobid: str, rank: num, id: num, ok: bool, value: optional(bytes), text: optional(str) },
  /**
   * A node's share of a PMI fence (src/orted/pmi/node-fence.ts): every local rank entered fence
   * `seq`; their puts since the last one. The HNP answers each node once all ranks are in.
   */
  'orted.fence': { jobid: str, seq: num, ranks: arrayOf(num), kv: arrayOf(tuple(str, str)) },
  /** Fence `seq` is complete: every node's puts of it (ok false: the job's kv store refused them). */
  'hnp.fence': { jobid: str, seq: num, ok: bool, kv: arrayOf(tuple(str, str)), text: optional(str) },
  /** A rank's name-service request (PMI publish_name / unpublish_name / lookup_name), for the HNP's dpm (src/hnp/dpm). */
  'orted.name': { jobid: str, rank: num, id: num, op: oneOf('publish', 'unpublish', 'lookup'), service: str, port: optional(str) },
  /** The answer to `orted.name` `id`: ok (with the port of a lookup), or why not. */
  'hnp.name': { jobid: str, rank: num, id: num, ok: bool, port: optional(str), text: optional(str) },
  /** A rank's MPI_Comm_spawn(_multiple) (PMI-1 `mcmd=spawn` blocks): one entry per app, the preput values. */
  'orted.spawn': { jobid: str, rank: num, id: num, apps: arrayOf(spawnApp), preput: arrayOf(tuple(str, str)) },
  /** The answer to `orted.spawn` `id`, once the child job has started: its jobid (`child`), or why not. */
  'hnp.spawned': { jobid: str, rank: num, id: num, ok: bool, child: optional(str), text: optional(str) },
  /** A rank asked its PMI server to abort the job (MPI_Abort), or left PMI without finalizing. */
  'orted.abort': { jobid: str, rank: num, code: num, message: str },
  /** A rank's app coordinator connected to / left its daemon. */
  'orted.app-link': { jobid: str, rank: num, up: bool },
  /** File transfer for the stage sstore (node -> hnp) and restart staging (hnp -> node). */
  'orted.file': { jobid: str, ref: str, seq: num, rank: num, path: str, offset: num, data: bytes, codec: oneOf('raw', 'zstd'), last: bool },
  'hnp.file': { jobid: str, rank: num, path: str, offset: num, data: bytes, codec: oneOf('raw', 'zstd'), last: bool },
  // liveness, either direction
  ping: { seq: num },
  pong: { seq: num },
  // tools <-> hnp
  'tool.ps': {},
  'hnp.ps': {
    hnp: shape({ pid: num, uri: str, started: num, nodes: arrayOf(str) }),
    jobs: arrayOf(jobSummary),
  },
  'tool.submit': { apps: arrayOf(submitApp), options: submitOptions },
  'hnp.submitted': { jobid: str, ranks: num },
  'hnp.notice': { jobid: str, text: str },
  'hnp.job-exit': { jobid: str, status: num },
  'tool.signal': { jobid: str, signal: str },
  'tool.stop': {},
  'tool.checkpoint': { jobid: optional(str), term: bool, stop: bool, status: bool },
  'hnp.ckpt-status': { jobid: str, state: str, ref: str, seq: num, elapsed: num },
  'hnp.ckpt-done': { jobid: str, ref: str, seq: num, dir: str, bytes: num, timing: recordOf(num) },
  'tool.snapshots': { jobid: optional(str) },
  'hnp.snapshots': { jobid: str, ref: str, dir: str, crs: str },
  'tool.migrate': { jobid: optional(str), ranks: arrayOf(num), off: arrayOf(str), onto: arrayOf(str), hold: bool, keepImages: bool, status: bool, verbose: bool },
  'hnp.migrate-status': { jobid: str, state: str, elapsed: num },
  'hnp.migrate-done': { jobid: str, moves: arrayOf(movedRank), bytes: num, totalMs: num, timing: recordOf(num) },
  error: { message: str },
} satisfies Record<string, Shape>

type Catalog = typeof CATALOG
export type MessageType = keyof Catalog
export type MessageOf<T extends MessageType> = Simplify<{ t: T } & Fields<Catalog[T]>>
export type Message = { [T in MessageType]: MessageOf<T> }[MessageType]

export function isMessageType(t: unknown): t is MessageType {
  return typeof t === 'string' && Object.hasOwn(CATALOG, t)
}

/**
 * Null when `m` is a well-formed message, else one line saying what is wrong. Optional fields a
 * peer sent as nil are deleted so the value matches the TS type (`undefined`, not `null`).
 */
export function validateMessage(m: unknown): string | null {
  if (!isPlainObject(m) || typeof m.t !== 'string') return 'not a message (a map with a string "t")'
  if (!isMessageType(m.t)) return `unknown message type "${untrusted(m.t, 40)}"`
  const s: Shape = CATALOG[m.t]
  const err = checkShape(s, m, m.t)
  if (err) return err
  for (const [k, f] of Object.entries(s)) if (f.optional && m[k] === null) delete m[k]
  return null
}

/** What the HNP's coordinators (snapc, app services, restart staging) send a node about one job. */
export type SnapcToNode = MessageOf<'hnp.ckpt'> | MessageOf<'hnp.app'> | MessageOf<'hnp.fence'> | MessageOf<'hnp.name'> | MessageOf<'hnp.spawned'>
/** What a node's local coordinator reports back to them. */
export type NodeToSnapc =
  | MessageOf<'orted.ckpt'>
  | MessageOf<'orted.app'>
  | MessageOf<'orted.app-link'>
  | MessageOf<'orted.fence'>
  | MessageOf<'orted.abort'>
  | MessageOf<'orted.name'>
  | MessageOf<'orted.spawn'>
export const SNAPC_TO_NODE = ['hnp.ckpt', 'hnp.app', 'hnp.fence', 'hnp.name', 'hnp.spawned'] as const
export const NODE_TO_SNAPC = ['orted.ckpt', 'orted.app', 'orted.app-link', 'orted.fence', 'orted.abort', 'orted.name', 'orted.spawn'] as const
// Snapshot files travel as 'orted.file' (node -> HNP store) and 'hnp.file' (restart staging),
// handed to a FileReceiver on arrival (src/sstore/sinks.ts), with reading held while it is behind.
