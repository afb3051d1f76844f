/**
 * An authenticated, message-level connection: what the HNP, daemons and tools actually use.
 * `clientConnect` dials and runs the handshake; `serve` (server.ts) accepts. Either way a
 * Channel only exists once both sides proved they hold the job secret.
 */
import { ActionableError, errorMessage } from '../errors'
import { log, untrusted } from '../log'
import { initiateHandshake, type HandshakeOptions } from './auth'
import { parseSecret } from './secret'
import { FramedConn, HANDSHAKE_MAX_FRAME, WireError, type FrameSink } from './codec'
import type { Message, MessageOf, MessageType, Role } from './messages'
import type { Transport } from './transport'

type Handler<T extends MessageType> = (m: MessageOf<T>) => void

/** Default for Channel.drained(): two 4 MiB file chunks in flight keep the pipe full. */
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024

export class Channel implements FrameSink {
  private handlers = new Map<MessageType, Set<Handler<any>>>()
  private anyHandlers = new Set<(m: Message) => void>()
  private closeCbs = new Set<(err?: Error) => void>()
  private isClosed = false

  /**
   * `role` is what the connecting side authenticated as (the peer's role on a server, our own
   * on a client). Delivery starts on the next macrotask, so handlers registered right after
   * `await clientConnect(...)` or inside `serve`'s callback see everything the peer sent.
   */
  constructor(
    private readonly fc: FramedConn,
    readonly role: Role,
  ) {
    setImmediate(() => fc.setSink(this))
  }

  get remote(): string {
    return this.fc.remote
  }

  get closed(): boolean {
    return this.isClosed || this.fc.closed
  }

  /** Queue a message (never blocks; big ones are flushed as the socket drains). False if closed. */
  send(msg: Message): boolean {
    return this.fc.send(msg)
  }

  /**
   * Queue rank output on the output lane: every message sent with `send` goes before output
   * queued here (at frame boundaries), so control never waits behind a backlog of output
   * (docs/wire.md, "Priority"). Output messages keep their order among themselves.
   */
  sendOutput(msg: Message): boolean {
    return this.fc.send(msg, true)
  }

  /**
   * Resolves once all output sent so far (sendOutput) is with the kernel: a message sent after
   * that reaches the peer after the output, e.g. a rank's exit after its last lines.
   */
  outputSent(): Promise<void> {
    return this.fc.outputSent()
  }

  /** Bytes queued for sending that the transport has not taken yet. */
  get queuedBytes(): number {
    return this.fc.queuedBytes
  }

  /**
   * Flow control for bulk transfers: `send(...)` then `await drained()` keeps at most
   * `maxQueuedBytes` waiting in memory. Rejects (WireError) once the connection is closed.
   */
  drained(maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES): Promise<void> {
    return this.fc.drained(maxQueuedBytes)
  }

  /**
   * Stop reading from the peer (TCP backpressure) until the returned function is called, e.g.
   * while received file chunks wait for the disk. Holds nest; reading resumes after the last.
   */
  holdReading(): () => void {
    return this.fc.holdReading()
  }

  /** Handle every message of one type; returns a function that removes the handler. */
  on<T extends MessageType>(type: T, handler: Handler<T>): () => void {
    let set = this.handlers.get(type)
    if (!set) this.handlers.set(type, (set = new Set()))
    set.add(handler)
    return () => set.delete(handler)
  }

  /** See every message (after the typed handlers). */
  onAny(handler: (m: Message) => void): () => void {
    this.anyHandlers.add(handler)
    return () => this.anyHandlers.delete(handler)
  }

  /** Called once when the connection ends, whoever ended it; err when it broke. */
  onClose(cb: (err?: Error) => void): () => void {
    if (this.isClosed) queueMicrotask(() => cb())
    else this.closeCbs.add(cb)
    return () => this.closeCbs.delete(cb)
  }

  close(): void {
    this.fc.close()
  }

  /**
   * Send `msg` and wait for the next message of `replyType`. An `error` message from the peer
   * rejects with its text; so do a close and the timeout. Meant for one outstanding request of
   * a given reply type at a time.
   */
  request<R extends MessageType>(msg: Message, replyType: R, timeoutMs = 10_000): Promise<MessageOf<R>> {
    return new Promise((resolve, reject) => {
      const cleanups: (() => void)[] = []
      const settle = (fn: () => void) => {
        for (const c of cleanups) c()
        fn()
      }
      cleanups.push(this.on(replyType, (m) => settle(() => resolve(m))))
      if (replyType !== 'error') cleanups.push(this.on('error', (m) => settle(() => reject(new WireError(m.message)))))
      cleanups.push(this.onClose((err) => settle(() => reject(new WireError(`connection to ${this.remote} closed before "${replyType}" arrived${err ? `: ${err.message}` : ''}`)))))
      const timer = setTimeout(() => settle(() => reject(new WireError(`no "${replyType}" from ${this.remote} within ${timeoutMs / 1000} s`))), timeoutMs)
      cleanups.push(() => clearTimeout(timer))
      if (!this.send(msg)) settle(() => reject(new WireError(`connection to ${this.remote} is closed`)))
    })
  }

  // ---- FrameSink -------------------------------------------------------------------------------

  message(m: Message): void {
    for (const h of this.handlers.get(m.t) ?? []) this.call(m, h)
    for (const h of this.anyHandlers) this.call(m, h)
  }

  protocolError(err: WireError): void {
    log.warn(`wire: dropping ${this.role} connection ${this.remote}: ${untrusted(err.message, 200)}`)
    this.fc.close()
  }

  ended(err?: Error): void {
    if (this.isClosed) return
    this.isClosed = true
    if (this.fc.decoder.partial) log.debug(`wire: ${this.remote} closed in the middle of a message`)
    for (const cb of [...this.closeCbs]) cb(err)
    this.closeCbs.clear()
  }

  private call(m: Message, h: (m: any) => void): void {
    try {
      h(m)
    } catch (err) {
      // One broken handler must not take the connection (or the process) down.
      log.error(`handler for "${m.t}" from ${this.remote} failed: ${errorMessage(err)}`)
    }
  }
}

/** Dial `uri`, authenticate as `role` with the job secret (hex), and return the channel. */
export async function clientConnect(
  transport: Transport,
  uri: string,
  secret: string | Uint8Array,
  role: Role,
  opts: HandshakeOptions = {},
): Promise<Channel> {
  const key = parseSecret(secret)
  let fc: FramedConn
  try {
    fc = new FramedConn(await transport.connect(uri), HANDSHAKE_MAX_FRAME)
  } catch (err) {
    throw new ActionableError(errorMessage(err).startsWith('cannot connect') ? errorMessage(err) : `cannot connect to ${uri}: ${errorMessage(err)}`)
  }
  await initiateHandshake(fc, key, role, uri, opts)
  return new Channel(fc, role)
}
