/**
 * A rank's end of the app-coordinator protocol (docs/app-protocol.md). `ompx/app` wraps one
 * instance for the process; `ompx shim` drives one for programs that cannot link anything.
 *
 * node:net rather than Bun.connect so the SDK also runs under Node. The socket is unref'd while
 * nothing is pending, so an app that never calls finalize() still exits when its code ends; it is
 * ref'd while a request waits or a checkpoint is under way, so neither is cut short.
 */
import { createConnection, type Socket } from 'node:net'
import { CheckpointStages, type CheckpointInfo, type ContinueInfo, type TerminateInfo } from './checkpoint'
import { Kv } from './kv'
import { LineReader, APP_PROTOCOL_VERSION, parseId, splitFields } from './lines'
import { badPreferences, encodePreferences, parseOutcome, type MigrateOutcome, type MigratePreference } from './migrate'
import { Requests, fail, type Reply } from './requests'

type Awaitable<T> = T | Promise<T>

export interface CheckpointTicket {
  /** Sequence number of the snapshot within its global snapshot. */
  seq: number
  /** The global snapshot reference (what `ompx restart` takes). */
  ref: string
}

/** What onRestart is told: `migrated` when the rank was moved here by a migration (OMPX_MIGRATED=1). */
export interface RestartInfo {
  migrated: boolean
}

export interface AppClientOptions {
  /** Where OMPX_COORD_SOCK, OMPX_COORD_TOKEN, OMPX_RANK, OMPX_SIZE and OMPX_MIGRATED come from. */
  env?: Record<string, string | undefined>
  /** How RELEASE TERM ends the process (tests replace it). */
  exit?: (code: number) => void
}

const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined)

export class AppClient {
  rank: number
  size: number
  isRestart = false
  restartDir: string | null = null
  /** True when this rank was restarted on a new node by a migration (set with isRestart). */
  migrated = false
  /** True when the process was not started by ompx (no OMPX_COORD_SOCK): kv and barriers are local. */
  readonly standalone: boolean
  private readonly path: string | undefined
  private readonly token: string | undefined
  private sock: Socket | null = null
  private connecting: Promise<void> | null = null
  private welcome: { resolve(line: string): void; reject(err: Error): void } | null = null
  private readonly pending: Requests
  private readonly movedHere: boolean
  private initialized = false
  private finishing: Promise<void> | null = null
  private closed = false
  private readonly kv: Kv
  private restartCb: ((dir: string, info: RestartInfo) => Awaitable<void>) | undefined
  private stages: CheckpointStages

  constructor(opts: AppClientOptions = {}) {
    const env = opts.env ?? process.env
    this.path = env.OMPX_COORD_SOCK || undefined
    this.token = env.OMPX_COORD_TOKEN
    this.standalone = !this.path
    this.rank = int(env.OMPX_RANK) ?? 0
    this.size = int(env.OMPX_SIZE) ?? 1
    this.movedHere = env.OMPX_MIGRATED === '1'
    this.stages = new CheckpointStages({
      write: this.write,
      finalizing: () => this.finishing !== null,
      closed: () => this.closed,
      changed: () => this.updateRef(),
      exit: opts.exit ?? ((code) => process.exit(code)),
    })
    this.pending = new Requests(this.stages.hold)
    this.kv = new Kv((what, verb, args) => this.request(what, verb, args), this.standalone, () => this.size)
  }

  onCheckpoint(cb: (dir: string, info: CheckpointInfo) => Awaitable<void>): void {
    this.stages.cb.checkpoint = cb
  }
  onContinue(cb: (info: ContinueInfo) => Awaitable<void>): void {
    this.stages.cb.cont = cb
  }
  onRestart(cb: (dir: string, info: RestartInfo) => Awaitable<void>): void {
    this.restartCb = cb
  }
  onTerminate(cb: (info: TerminateInfo) => Awaitable<void>): void {
    this.stages.cb.terminate = cb
  }

  /** The checkpoint or migration round under way (CKPT received, not yet over), or null. */
  get round(): CheckpointInfo | null {
    return this.stages.round
  }

  /** HELLO and WELCOME (running onRestart on a restart), without the INIT barrier. */
  connect(): Promise<void> {
    return (this.connecting ??= this.handshake())
  }

  async init(): Promise<void> {
    await this.connect()
    if (this.standalone || this.initialized) return
    await this.request('init', 'INIT')
    this.initialized = true
  }

  finalize(): Promise<void> {
    if (this.standalone || !this.sock) return Promise.resolve()
    return (this.finishing ??= this.request('finalize', 'FIN').then(
      () => this.hangUp(),
      (err) => (this.hangUp(), Promise.reject(err)),
    ))
  }

  private hangUp(): void {
    this.closed = true
    this.sock?.end()
  }

  async requestCheckpoint(opts: { term?: boolean } = {}): Promise<CheckpointTicket> {
    if (this.standalone) throw fail('requestCheckpoint', 'not run under ompx (OMPX_COORD_SOCK unset): nothing can checkpoint this process')
    const { text = '' } = await this.request('requestCheckpoint', 'REQUEST', opts.term ? 'CHECKPOINT term' : 'CHECKPOINT')
    const [seq, ref = ''] = splitFields(text, 2)
    return { seq: Number(seq), ref }
  }

  /** Move ranks (request_op migrate); resolves when every mover runs on its new node. */
  async requestMigrate(prefs: MigratePreference[]): Promise<MigrateOutcome> {
    const bad = badPreferences(prefs, this.size)
    if (bad) throw fail('requestMigrate', bad)
    if (this.standalone) throw fail('requestMigrate', 'not run under ompx (OMPX_COORD_SOCK unset): there is nowhere to move this process')
    const { text = '' } = await this.request('requestMigrate', 'REQUEST', `MIGRATE ${encodePreferences(prefs)}`)
    return parseOutcome(text)
  }

  quiesceStart(): void {
    this.stages.quiesceStart()
  }

  quiesceEnd(): void {
    this.stages.quiesceEnd()
  }

  put(key: string, value: Uint8Array | string): Promise<void> {
    return this.kv.put(key, value)
  }

  get(key: string): Promise<Uint8Array> {
    return this.kv.get(key)
  }

  async getString(key: string): Promise<string> {
    return new TextDecoder().decode(await this.get(key))
  }

  barrier(name = 'default'): Promise<void> {
    return this.kv.barrier(name)
  }

  /** Where a CPU-bound loop lets socket data and SDK callbacks run; waits while a checkpoint holds the app. */
  async yieldToRuntime(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve))
    while (this.stages.hold.active) await this.stages.hold.wait()
  }

  // ---- connection --------------------------------------------------------------------------

  private async handshake(): Promise<void> {
    if (this.standalone) return
    if (!this.token) throw fail('init', 'OMPX_COORD_SOCK is set but OMPX_COORD_TOKEN is not')
    const first = new Promise<string>((resolve, reject) => (this.welcome = { resolve, reject }))
    const sock = createConnection(this.path!)
    this.sock = sock
    const reader = new LineReader((line) => this.onLine(line))
    sock.on('data', (b: Uint8Array) => {
      if (!reader.push(b)) sock.destroy(new Error('the daemon sent a line longer than the protocol allows'))
    })
    sock.on('error', (err) => this.onClosed(err))
    sock.on('close', () => this.onClosed())
    sock.write(`HELLO ${APP_PROTOCOL_VERSION} ${this.rank} ${this.token} ${process.pid}\n`)
    try {
      const line = await first
      if (line.startsWith('DENIED')) throw fail('init', `the ompx daemon refused rank ${this.rank}: ${line.slice(7)}`)
      if (line.startsWith('WELCOME RESTART ')) {
        this.isRestart = true
        this.restartDir = line.slice(16)
        this.migrated = this.movedHere
        await this.restartCb?.(this.restartDir, { migrated: this.migrated })
      } else if (line !== 'WELCOME START') throw fail('init', `unexpected answer to HELLO: ${line.slice(0, 80)}`)
    } catch (err) {
      // A failed init must not leave a ref'd socket keeping the process alive.
      this.closed = true
      sock.destroy()
      throw err
    }
    this.updateRef()
  }

  private request(what: string, verb: string, args?: string): Promise<Reply> {
    if (!this.sock || this.closed) return Promise.reject(fail(what, this.sock ? 'the connection to the ompx daemon is closed' : 'call init() first'))
    const sent = this.pending.send(what, verb, args, this.write)
    this.updateRef()
    return sent
  }

  private write = (line: string): void => {
    if (this.sock && !this.sock.destroyed) this.sock.write(`${line}\n`)
  }

  private onClosed(err?: Error): void {
    if (this.welcome) {
      const w = this.welcome
      this.welcome = null
      w.reject(fail('init', `cannot connect to the ompx daemon at ${this.path}: ${err?.message ?? 'connection closed'}`))
    }
    if (this.closed && !this.pending.size) return
    this.closed = true
    this.pending.failAll(this.finishing ? 'the connection was closed by finalize()' : 'the connection to the ompx daemon was lost')
    this.stages.reset()
  }

  private updateRef(): void {
    if (!this.sock || this.closed) return
    if (this.pending.size || this.stages.busy || this.welcome) this.sock.ref()
    else this.sock.unref()
  }

  // ---- the daemon's lines --------------------------------------------------------------------

  private onLine(line: string): void {
    if (this.welcome) {
      const w = this.welcome
      this.welcome = null
      return w.resolve(line)
    }
    const [verb = '', a = '', rest] = splitFields(line, 3)
    if (verb === 'OK' || verb === 'VALUE' || verb === 'ERR') return this.pending.reply(verb, parseId(a), rest), this.updateRef()
    // Anything else that is not a checkpoint line is ignored: a newer daemon may say more.
    this.stages.onLine(verb, a, line)
  }
}
