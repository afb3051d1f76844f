/**
 * A Bun socket as a RawConn, shared by the tcp and unix transports. Bun's `write` is
 * non-blocking and may take only part of the bytes, so the rest is queued and flushed on
 * `drain`; nothing is lost however big the message. Two lanes (docs/wire.md, "Priority"):
 * control frames go before queued output frames, at frame boundaries; each lane stays in order.
 */
import type { Socket, SocketHandler } from 'bun'
import type { RawConn } from './transport'
import { giveFrame, socketBytes } from './frame-pool'

/** After close(), how long queued bytes and the peer's FIN may take before the socket is cut. */
const CLOSE_GRACE_MS = 5000

/**
 * Optional flow control a RawConn may offer (SocketConn does; external transports need not).
 * Bulk senders wait for the outgoing queue to shrink; bulk receivers stop reading while their
 * disk catches up, so the peer sees TCP backpressure instead of us buffering without limit.
 */
export interface FlowControl {
  /** Bytes accepted by write() that the kernel has not taken yet. */
  readonly queuedBytes: number
  /** Resolves once every output-lane byte written so far is with the kernel (or the connection closed). */
  whenOutputSent(): Promise<void>
  /** Resolves once queuedBytes <= limit, or when the connection closes. */
  whenQueuedBelow(limit: number): Promise<void>
  pauseReading(): void
  resumeReading(): void
}

export function hasFlowControl(conn: RawConn): conn is RawConn & FlowControl {
  const c = conn as Partial<FlowControl>
  return typeof c.whenQueuedBelow === 'function' && typeof c.pauseReading === 'function' && typeof c.resumeReading === 'function' && typeof c.whenOutputSent === 'function'
}

/** A frame (or what is left of it) the kernel has not taken yet, and the frame it belongs to (see frame-pool.ts). */
interface Pending {
  bytes: Uint8Array
  frame: Uint8Array
  output: boolean
}

export class SocketConn implements RawConn, FlowControl {
  /** The frame the kernel took part of: it goes first, whatever its lane (frames never interleave). */
  private current: Pending | null = null
  private control: Pending[] = []
  private output: Pending[] = []
  private queued = 0
  /** Output-lane bytes ever written, and of those, ever handed to the kernel (whenOutputSent). */
  private outputIn = 0
  private outputOut = 0
  private outputWaiters: { upTo: number; resolve: () => void }[] = []
  private drainWaiters: { limit: number; resolve: () => void }[] = []
  private dataCb: ((b: Uint8Array) => void) | null = null
  private closeCbs: ((err?: Error) => void)[] = []
  /** Chunks that arrived before anyone listened (between accept and onData). */
  private early: Uint8Array[] = []
  private closing = false
  private closed = false
  private closeErr: Error | undefined

  constructor(
    private readonly socket: Socket<SocketConn | undefined>,
    readonly remote: string,
  ) {}

  /**
   * Takes ownership of `bytes` (every caller passes a freshly encoded frame or line): what the
   * kernel does not take at once is queued as a view, not copied — a copy of every 4 MiB
   * snapshot chunk while the peer is behind doubled the garbage of a transfer. A frame from the
   * frame pool goes back to it once the kernel has all of it. `output` frames (rank output) wait
   * behind every queued control frame; a control frame overtakes queued output frames.
   */
  write(bytes: Uint8Array, output = false): void {
    if (this.closed || this.closing) return
    socketBytes(bytes.length)
    if (output) this.outputIn += bytes.length
    const lane = output ? this.output : this.control
    // Something of this lane is waiting, or anything is when we are output: writing now would overtake it.
    if (this.current || lane.length > 0 || (output && this.control.length > 0)) {
      lane.push({ bytes, frame: bytes, output })
      this.queued += bytes.length
      return
    }
    const n = this.socket.write(bytes)
    if (n < 0) return // closed under us; the close handler reports it
    // Fully taken by the kernel: a pooled frame's buffer can serve the next one.
    if (n >= bytes.length) {
      this.taken({ bytes, frame: bytes, output }, n)
      return
    }
    this.current = { bytes: bytes.subarray(n), frame: bytes, output }
    this.queued += bytes.length - n
    if (output) this.outputOut += n
  }

  /** The kernel took all of a frame (its last `n` bytes). */
  private taken(p: Pending, n: number): void {
    giveFrame(p.frame)
    if (!p.output) return
    this.outputOut += n
    this.wakeOutputWaiters()
  }

  whenOutputSent(): Promise<void> {
    if (this.outputOut >= this.outputIn || this.closed) return Promise.resolve()
    return new Promise((resolve) => this.outputWaiters.push({ upTo: this.outputIn, resolve }))
  }

  private wakeOutputWaiters(): void {
    while (this.outputWaiters.length > 0 && (this.closed || this.outputWaiters[0]!.upTo <= this.outputOut)) this.outputWaiters.shift()!.resolve()
  }

  get queuedBytes(): number {
    return this.queued
  }

  whenQueuedBelow(limit: number): Promise<void> {
    if (this.queued <= limit || this.closed) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push({ limit, resolve }))
  }

  pauseReading(): void {
    if (!this.closed) this.socket.pause()
  }

  resumeReading(): void {
    if (!this.closed) this.socket.resume()
  }

  onData(cb: (bytes: Uint8Array) => void): void {
    this.dataCb = cb
    const early = this.early
    this.early = []
    for (const b of early) cb(b)
  }

  onClose(cb: (err?: Error) => void): void {
    if (this.closed) queueMicrotask(() => cb(this.closeErr))
    else this.closeCbs.push(cb)
  }

  close(): void {
    if (this.closed || this.closing) return
    this.closing = true
    if (!this.current && this.control.length === 0 && this.output.length === 0) this.socket.end()
    // A peer that neither reads our queued bytes nor answers our FIN does not get to pin us.
    setTimeout(() => this.closed || this.socket.terminate(), CLOSE_GRACE_MS).unref()
  }

  // ---- called by the socket handlers below ---------------------------------------------------

  handleData(b: Uint8Array): void {
    if (this.closed) return
    socketBytes(b.length)
    if (this.dataCb) this.dataCb(b)
    else this.early.push(b)
  }

  handleDrain(): void {
    for (;;) {
      const head = this.current ?? this.control.shift() ?? this.output.shift()
      if (!head) break
      this.current = head
      const n = this.socket.write(head.bytes)
      if (n < 0) return
      const took = Math.min(n, head.bytes.length)
      this.queued -= took
      if (n < head.bytes.length) {
        head.bytes = head.bytes.subarray(n)
        if (head.output) this.outputOut += took
        this.wakeDrainWaiters()
        return
      }
      this.current = null
      this.taken(head, took)
    }
    this.wakeDrainWaiters()
    if (this.closing) this.socket.end()
  }

  private wakeDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return
    const still = this.drainWaiters.filter((w) => this.queued > w.limit && !this.closed)
    for (const w of this.drainWaiters) if (!still.includes(w)) w.resolve()
    this.drainWaiters = still
  }

  handleClose(err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.closeErr = err
    this.current = null
    this.control = []
    this.output = []
    this.queued = 0
    this.wakeDrainWaiters()
    this.wakeOutputWaiters()
    for (const cb of this.closeCbs.splice(0)) cb(err)
  }
}

/**
 * Socket handlers that drive a SocketConn stored in `socket.data`. `onOpen` creates it (and, on
 * a server, hands it to the listener's callback); a throwing user callback must not take the
 * socket handler down with it, so data errors close that one connection.
 */
export function socketHandlers(onOpen: (s: Socket<SocketConn | undefined>) => void): SocketHandler<SocketConn | undefined> {
  return {
    open(s) {
      try {
        s.setNoDelay(true)
      } catch {
        // unix sockets have no Nagle to turn off
      }
      onOpen(s)
    },
    data(s, bytes) {
      s.data?.handleData(bytes)
    },
    drain(s) {
      s.data?.handleDrain()
    },
    close(s, err) {
      s.data?.handleClose(err)
    },
    error(s, err) {
      s.data?.handleClose(err)
      s.terminate()
    },
  }
}
