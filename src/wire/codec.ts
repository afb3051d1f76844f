/**
 * Framing: every message is a 4-byte big-endian body length followed by a MessagePack body (a
 * map with a string `t`). Plain maps only (no extension types), so a peer in any language with a
 * MessagePack library can speak the protocol. The codec is @msgpack/msgpack: pure JavaScript,
 * no native add-on, nothing platform-specific for npm to resolve.
 */
import type { Encoder } from '@msgpack/msgpack'
import { msgpack } from './msgpack'
import { decodeBounded } from './body-decoder'
import type { RawConn } from './transport'
import { takeBody, takeFrame } from './frame-pool'
import { validateMessage, type Message } from './messages'
import { hasFlowControl } from './socket'

/** Largest body accepted once authenticated; a 10 MB output chunk fits with room to spare. */
export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024
/** Before authentication a peer gets far less: nobody unauthenticated makes us allocate 64 MiB. */
export const HANDSHAKE_MAX_FRAME = 4096

/** A peer broke the protocol (bad frame, bad message, failed handshake). The peer gets dropped. */
export class WireError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WireError'
  }
}

/** Frames above this are snapshot chunks (see encodeFrame). */
const BIG_FRAME = 1024 * 1024
/** Made on the first big frame: most processes (tools, daemons of jobs that never checkpoint) send none. */
let bigEncoder: Encoder | undefined

/** Bytes of the binary fields at the top of a message (a file chunk's data). */
function bytesIn(msg: Message): number {
  let n = 0
  for (const v of Object.values(msg)) if (v instanceof Uint8Array) n += v.length
  return n
}

/** Encode one message as a frame. Throws WireError if the message does not match the catalog. */
export function encodeFrame(msg: Message): Uint8Array {
  const err = validateMessage(msg)
  if (err) throw new WireError(`refusing to send a malformed message: ${err}`)
  // A field set to undefined travels as nil; the validator turns it back into "absent".
  // A snapshot chunk: encoded by one long-lived encoder into its own reused buffer (the frame
  // below is the only copy), not a fresh one that doubles its way up to the chunk's size.
  const big = bytesIn(msg) > BIG_FRAME
  const body = big ? (bigEncoder ??= new (msgpack().Encoder)({ initialBufferSize: 8 * 1024 * 1024 })).encodeSharedRef(msg) : msgpack().encode(msg)
  // Big frames come from the frame pool; the connection gives them back once sent.
  const frame = big ? takeFrame(4 + body.length) : new Uint8Array(4 + body.length)
  new DataView(frame.buffer, frame.byteOffset).setUint32(0, body.length)
  frame.set(body, 4)
  return frame
}

/**
 * Decode and validate one frame body. Byte fields (a chunk's data) are views into what is decoded:
 * into `body` itself when `owned` (nothing else writes into it), else into a copy (a socket's buffer).
 */
export function decodeBody(body: Uint8Array, owned = false): Message {
  let value: unknown
  try {
    // Container lengths are bounded by the body's size (see body-decoder.ts).
    value = decodeBounded(owned ? body : body.slice())
  } catch (err) {
    // The decoder's message may quote the decoded data; keep logs short and free of payloads.
    const why = String((err as Error).message ?? err).split(/[{[]/)[0]!.trim().slice(0, 60)
    throw new WireError(`undecodable message body (${why})`)
  }
  const bad = validateMessage(value)
  if (bad) throw new WireError(`bad message: ${bad}`)
  return value as Message
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / (1024 * 1024)).toFixed(1)} MiB` : `${n} bytes`
}

/**
 * Incremental decoder for a byte stream: `push` any chunk, get back every message it completed.
 * A frame's body buffer is allocated only after its length passed the limit, and frames that sit
 * entirely inside one chunk are decoded in place. After an error the decoder stays failed.
 */
export class FrameDecoder {
  private header = new Uint8Array(4)
  private headerFill = 0
  private body: Uint8Array | null = null
  private bodyFill = 0
  private failed: WireError | null = null

  /** Mutable on purpose: the handshake runs with a small limit, then the channel raises it. */
  constructor(public maxFrame = DEFAULT_MAX_FRAME) {}

  push(chunk: Uint8Array): Message[] {
    return [...this.messages(chunk)]
  }

  /**
   * Like `push`, but yields one message at a time, so the consumer can change `maxFrame`
   * between frames of the same chunk (the handshake's welcome and the first real message may
   * arrive together).
   */
  *messages(chunk: Uint8Array): Generator<Message> {
    if (this.failed) throw this.failed
    try {
      yield* this.consume(chunk)
    } catch (err) {
      this.failed = err instanceof WireError ? err : new WireError(String(err))
      throw this.failed
    }
  }

  /** True while part of a frame is buffered (a peer closing now cut a message short). */
  get partial(): boolean {
    return this.headerFill > 0 || this.body !== null
  }

  private *consume(chunk: Uint8Array): Generator<Message> {
    let i = 0
    while (i < chunk.length) {
      if (!this.body) {
        const take = Math.min(4 - this.headerFill, chunk.length - i)
        this.header.set(chunk.subarray(i, i + take), this.headerFill)
        this.headerFill += take
        i += take
        if (this.headerFill < 4) break
        this.headerFill = 0
        const len = new DataView(this.header.buffer).getUint32(0)
        if (len === 0) throw new WireError('empty frame')
        if (len > this.maxFrame) {
          throw new WireError(`frame of ${formatBytes(len)} exceeds the ${formatBytes(this.maxFrame)} limit`)
        }
        if (len <= BIG_FRAME && chunk.length - i >= len) {
          const body = chunk.subarray(i, i + len)
          i += len
          yield decodeBody(body)
          continue
        }
        // A snapshot chunk's body comes from the frame pool, its data a view into it; whoever
        // consumes the chunk gives the body back once written (releaseBody), not before.
        this.body = len > BIG_FRAME ? takeBody(len) : new Uint8Array(len)
        this.bodyFill = 0
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - i)
      this.body.set(chunk.subarray(i, i + take), this.bodyFill)
      this.bodyFill += take
      i += take
      if (this.bodyFill === this.body.length) {
        const body = this.body
        this.body = null
        yield decodeBody(body, true) // ours alone: the next frame gets another buffer
      }
    }
  }
}

/** What a FramedConn reports, in arrival order. */
export interface FrameSink {
  message(m: Message): void
  /** The peer broke framing or sent a bad message; the connection is unusable. */
  protocolError(err: WireError): void
  ended(err?: Error): void
}

type Event = { m: Message } | { bad: WireError } | { end: Error | undefined }

/**
 * Messages over a RawConn. Events go to the current sink; with no sink they queue, in order,
 * close included, so whoever takes over after the handshake misses nothing that arrived meanwhile.
 */
export class FramedConn {
  readonly decoder: FrameDecoder
  private sink: FrameSink | null = null
  private queue: Event[] = []
  private ending = false
  private ended = false
  private holds = 0

  constructor(
    readonly raw: RawConn,
    maxFrame = DEFAULT_MAX_FRAME,
  ) {
    this.decoder = new FrameDecoder(maxFrame)
    raw.onData((chunk) => {
      if (this.ending) return
      try {
        for (const m of this.decoder.messages(chunk)) {
          if (this.ending) return
          this.emit({ m })
        }
      } catch (err) {
        this.emit({ bad: err instanceof WireError ? err : new WireError(String(err)) })
      }
    })
    raw.onClose((err) => {
      this.ended = true
      this.emit({ end: err })
    })
  }

  get remote(): string {
    return this.raw.remote
  }

  /** True once close() was called or the peer went away: sends are dropped. */
  get closed(): boolean {
    return this.ending || this.ended
  }

  /** Hand events to `sink` (flushing what queued meanwhile), or queue them when null. */
  setSink(sink: FrameSink | null): void {
    this.sink = sink
    while (this.sink === sink && sink && this.queue.length > 0) this.deliver(sink, this.queue.shift()!)
  }

  /** False when the connection is already closed (the message is dropped). `output`: see RawConn.write. */
  send(msg: Message, output = false): boolean {
    if (this.closed) return false
    this.raw.write(encodeFrame(msg), output)
    return true
  }

  /** Resolves once every output frame sent so far is with the kernel (at once without lanes). */
  outputSent(): Promise<void> {
    return hasFlowControl(this.raw) ? this.raw.whenOutputSent() : Promise.resolve()
  }

  close(): void {
    if (this.ending) return
    this.ending = true
    this.raw.close()
  }

  /** Bytes sent but not yet taken by the kernel (0 when the transport does not say). */
  get queuedBytes(): number {
    return hasFlowControl(this.raw) ? this.raw.queuedBytes : 0
  }

  /**
   * Resolves once at most `maxQueuedBytes` wait to be sent: how a bulk sender keeps memory
   * bounded (send, then await this). Rejects when the connection is or becomes closed, since
   * nothing more will be sent. Transports without flow control resolve at once.
   */
  async drained(maxQueuedBytes: number): Promise<void> {
    if (this.closed) throw new WireError(`connection to ${this.remote} is closed`)
    if (!hasFlowControl(this.raw) || this.raw.queuedBytes <= maxQueuedBytes) return
    await this.raw.whenQueuedBelow(maxQueuedBytes)
    if (this.closed) throw new WireError(`connection to ${this.remote} closed while sending`)
  }

  /**
   * Stop reading from the peer until the returned release function is called (every holder must
   * release before reading resumes). Frames already received are still delivered.
   */
  holdReading(): () => void {
    const raw = this.raw
    if (!hasFlowControl(raw)) return () => {}
    if (this.holds++ === 0) raw.pauseReading()
    let released = false
    return () => {
      if (released) return
      released = true
      if (--this.holds === 0) raw.resumeReading()
    }
  }

  private emit(ev: Event): void {
    if (this.sink && this.queue.length === 0) this.deliver(this.sink, ev)
    else this.queue.push(ev)
  }

  private deliver(sink: FrameSink, ev: Event): void {
    if ('m' in ev) sink.message(ev.m)
    else if ('bad' in ev) sink.protocolError(ev.bad)
    else sink.ended(ev.end)
  }
}
