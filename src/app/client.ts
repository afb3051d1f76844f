/**
 * A rank's end of the app-coordinator protocol (docs/app-protocol.md). `ompx/app` wraps one
 * instance for the process; `ompx shim` drives one for programs that cannot link anything.
 *
 * node:net rather than Bun.connect so the SDK also runs under Node. The socket is unref'd while
 * nothing is pending, so an app that never calls finalize() still exits when its code ends; it is
 * ref'd while a request waits or a checkpoint is under way, so neither is cut short.
 */
import { createConnection, type Socket } from 'node:net'
import { CheckpointStages } from './checkpoint'
import { LineReader, MAX_VALUE, APP_PROTOCOL_VERSION, badKey, fromB64, parseId, splitFields, toB64, toBytes } from './lines'

type Awaitable<T> = T | Promise<T>

export interface CheckpointTicket {
  /** Sequence number of the snapshot within its global snapshot. */
  seq: number
  /** The global snapshot reference (what `ompx restart` takes). */
  ref: string
}

export interface AppClientOptions {
  /** Where OMPX_COORD_SOCK, OMPX_COORD_TOKEN, OMPX_RANK and OMPX_SIZE come from. */
  env?: Record<string, string | undefined>
  /** How RELEASE TERM ends the process (tests replace it). */
  exit?: (code: number) => void
}

interface Pending {
  what: string
  resolve(r: { text?: string; value?: Uint8Array }): void
  reject(err: Error): void
}

const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined)
const fail = (what: string, why: string) => new Error(`ompx/app: ${what}: ${why}`)

export class AppClient {
  rank: number
  size: number
  isRestart = false
  restartDir: string | null = null
  /** True when the process was not started by ompx (no OMPX_COORD_SOCK): kv and barriers are local. */
  readonly standalone: boolean
  private readonly path: string | undefined
  private readonly token: string | undefined
  private sock: Socket | null = null
  private connecting: Promise<void> | null = null
  private welcome: { resolve(line: string): void; reject(err: Error): void } | null = null
  private pending = new Map<number, Pending>()
  private nextId = 1
  private initialized = false
  private finishing: Promise<void> | null = null
  private closed = false
  private local = new Map<string, Uint8Array>()
  private restartCb: ((dir: string) => Awaitable<void>) | undefined
  private stages: CheckpointStages

  constructor(opts: AppClientOptions = {}) {
    const env = opts.env ?? process.env
    this.path = env.OMPX_COORD_SOCK || undefined
    this.token = env.OMPX_COORD_TOKEN
    this.standalone = !this.path
    this.rank = int(env.OMPX_RANK) ?? 0
    this.size = int(env.OMPX_SIZE) ?? 1
    this.stages = new CheckpointStages({
      write: this.write,
      finalizing: () => this.finishing !== null,
      closed: () => this.closed,
      changed: () => this.updateRef(),
      exit: opts.exit ?? ((code) => process.exit(code)),
    })
  }

  onCheckpoint(cb: (dir: string) => Awaitable<void>): void {
    this.stages.cb.checkpoint = cb
  }
  onContinue(cb: () => Awaitable<void>): void {
    this.stages.cb.cont = cb
  }
  onRestart(cb: (dir: string) => Awaitable<void>): void {
    this.restartCb = cb
  }
  onTerminate(cb: () => Awaitable<void>): void {
    this.stages.cb.terminate = cb
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

  quiesceStart(): void {
    this.stages.quiesceStart()
  }

  quiesceEnd(): void {
    this.stages.quiesceEnd()
  }

  async put(key: string, value: Uint8Array | string): Promise<void> {
    const bytes = toBytes(value)
    const bad = badKey(key) ?? (bytes.length > MAX_VALUE ? `the value is larger than ${MAX_VALUE} bytes` : null)
    if (bad) throw fail(`put("${key}")`, bad)
    if (this.standalone) return void this.local.set(this.soloCheck('put', key), bytes.slice())
    await this.request(`put("${key}")`, 'PUT', `${key} ${toB64(bytes)}`)
  }

  async get(key: string): Promise<Uint8Array> {
    const bad = badKey(key)
    if (bad) throw fail(`get("${key}")`, bad)
    if (this.standalone) {
      const v = this.local.get(this.soloCheck('get', key))
      if (!v) throw fail(`get("${key}")`, 'no value was put under this key (standalone: this process is the only rank)')
      return v.slice()
    }
    const { value } = await this.request(`get("${key}")`, 'GET', key)
    if (!value) throw fail(`get("${key}")`, 'the daemon answered without a value')
    return value
  }

  async getString(key: string): Promise<string> {
    return new TextDecoder().decode(await this.get(key))
  }

  async barrier(name = 'default'): Promise<void> {
    const bad = badKey(name)
    if (bad) throw fail(`barrier("${name}")`, bad)
    if (this.standalone) return void this.soloCheck('barrier', name)
    await this.request(`barrier("${name}")`, 'BARRIER', name)
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
        await this.restartCb?.(this.restartDir)
      } else if (line !== 'WELCOME START') throw fail('init', `unexpected answer to HELLO: ${line.slice(0, 80)}`)
    } catch (err) {
      // A failed init must not leave a ref'd socket keeping the process alive.
      this.closed = true
      sock.destroy()
      throw err
    }
    this.updateRef()
  }

  private request(what: string, verb: string, args?: string): Promise<{ text?: string; value?: Uint8Array }> {
    if (!this.sock || this.closed) return Promise.reject(fail(what, this.sock ? 'the connection to the ompx daemon is closed' : 'call init() first'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { what, resolve, reject })
      this.stages.hold.send(args === undefined ? `${verb} ${id}` : `${verb} ${id} ${args}`, this.write)
      this.updateRef()
    })
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
    const why = this.finishing ? 'the connection was closed by finalize()' : 'the connection to the ompx daemon was lost'
    for (const p of this.pending.values()) p.reject(fail(p.what, why))
    this.pending.clear()
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
    if (verb === 'OK' || verb === 'VALUE' || verb === 'ERR') return this.onReply(verb, parseId(a), rest)
    // Anything else that is not a checkpoint line is ignored: a newer daemon may say more.
    this.stages.onLine(verb, a, line)
  }

  private onReply(verb: string, id: number | null, rest: string | undefined): void {
    const p = id === null ? undefined : this.pending.get(id)
    if (!p) return
    this.pending.delete(id!)
    this.stages.hold.deliver(() => {
      if (verb === 'ERR') return p.reject(fail(p.what, rest || 'failed'))
      if (verb === 'OK') return p.resolve({ text: rest })
      const value = fromB64(rest ?? '')
      if (value) p.resolve({ value })
      else p.reject(fail(p.what, 'the daemon sent a value that is not base64'))
    })
    this.updateRef()
  }

  private soloCheck(what: string, key: string): string {
    if (this.size > 1) throw fail(`${what}("${key}")`, `this job has no app coordinator (OMPX_COORD_SOCK unset), so ranks cannot exchange data`)
    return key
  }
}
