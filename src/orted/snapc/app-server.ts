/**
 * The daemon's side of the app-coordinator protocol (docs/app-protocol.md): one Unix socket per
 * job per node, one connection per rank. It authenticates ranks, parses their lines into events
 * and writes the daemon's lines; what the requests mean (barriers, kv, checkpoints) is decided by
 * the caller. Nothing a rank sends can throw out of a socket callback: a rank that breaks the
 * protocol loses its connection, the others keep being served.
 */
import type { Socket } from 'bun'
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs'
import { errorMessage } from '../../errors'
import { log } from '../../log'
import { SocketConn, socketHandlers } from '../../wire/socket'
import { LineReader, APP_PROTOCOL_VERSION, oneLine, toB64, toBytes } from '../../app/lines'
import { parseHello, parseRankLine, type AppRequest } from './app-protocol'

export { wireRequest, type AppRequest } from './app-protocol'

export interface AppServerEvents {
  /** HELLO accepted; `pid` is the process that answers checkpoints (the rank, or its shim). */
  linked(rank: number, pid: number): void
  /** The linked connection closed (the rank exited, crashed or broke the protocol). */
  unlinked(rank: number): void
  request(rank: number, req: AppRequest): void
  prep(rank: number, status: 'ok' | 'stall' | 'null' | 'error', message?: string): void
}

export interface AppServerOptions {
  /** Unix socket path to listen on (inside the node's 0700 session directory). */
  path: string
  /** The expected token of a rank; undefined = not a rank of this job (DENIED). */
  token(rank: number): string | undefined
  /** Non-null: the rank restarts from the image in this directory (WELCOME RESTART). */
  restartDir(rank: number): string | null
  events: AppServerEvents
  /** A connection that has not sent an accepted HELLO by then is closed (default 5 s). */
  helloTimeoutMs?: number
}

export const DEFAULT_HELLO_TIMEOUT_MS = 5000

interface Capture {
  resolve(): void
  reject(err: Error): void
}

/** One accepted connection: unlinked until its HELLO is accepted. */
interface Peer {
  conn: SocketConn
  reader: LineReader
  rank: number | null
  capture: Capture | null
  /** Closes the connection if no HELLO was accepted in time; cleared once linked or gone. */
  helloTimer: ReturnType<typeof setTimeout> | null
}

export class AppServer {
  private peers = new Set<Peer>()
  private byRank = new Map<number, Peer>()
  private closed = false
  private server!: Bun.UnixSocketListener<SocketConn | undefined>

  private constructor(private readonly opts: AppServerOptions) {}

  static async listen(opts: AppServerOptions): Promise<AppServer> {
    const srv = new AppServer(opts)
    const { path } = opts
    // sun_path holds 108 bytes on Linux (104 on macOS), NUL included.
    if (Buffer.byteLength(path) > 103) throw new Error(`unix socket path ${path} is longer than 103 bytes; use a shorter TMPDIR`)
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`)
      unlinkSync(path) // a per-job path: a leftover of a daemon that died
    }
    // umask 0177 while binding: the socket is born 0600, no window where other users can connect.
    const oldMask = process.umask(0o177)
    try {
      srv.server = Bun.listen<SocketConn | undefined>({
        unix: path,
        data: undefined,
        socket: socketHandlers((s) => srv.accept(s)),
      })
    } finally {
      process.umask(oldMask)
    }
    chmodSync(path, 0o600)
    return srv
  }

  linked(rank: number): boolean {
    return this.byRank.has(rank)
  }

  reply(rank: number, id: number, ok: boolean, value?: Uint8Array | string, text?: string): void {
    if (!ok) return this.send(rank, `ERR ${id} ${oneLine(text ?? 'failed')}`)
    if (value !== undefined) return this.send(rank, `VALUE ${id} ${toB64(toBytes(value))}`)
    this.send(rank, text ? `OK ${id} ${oneLine(text)}` : `OK ${id}`)
  }

  /** Stage 1; options: term, stop, and for a migration round all_migrating (everyone) and migrating (the movers). */
  ckpt(rank: number, seq: number, options: string[], ref: string): void {
    this.send(rank, `CKPT ${seq} ${options.length ? options.join(',') : '-'} ${oneLine(ref)}`)
  }

  capture(rank: number, dir: string): Promise<void> {
    const peer = this.byRank.get(rank)
    if (!peer) return Promise.reject(new Error(`rank ${rank} is not connected to its app coordinator`))
    if (peer.capture) return Promise.reject(new Error(`rank ${rank} is already being captured`))
    return new Promise<void>((resolve, reject) => {
      peer.capture = { resolve, reject }
      peer.conn.write(line(`CAPTURE ${oneLine(dir)}`))
    })
  }

  /** Stage 3; `migrated`: the ranks a migration round moved (told to the ranks that stayed). */
  release(rank: number, state: 'CONTINUE' | 'TERM', migrated: number[] = []): void {
    this.send(rank, `RELEASE ${state}${migrated.length ? ` migrated=${migrated.join(',')}` : ''}`)
  }

  abort(rank: number, why: string): void {
    this.send(rank, `ABORT ${oneLine(why)}`)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.server.stop(true)
    for (const peer of [...this.peers]) this.drop(peer, 'the daemon closed the app coordinator')
    try {
      unlinkSync(this.opts.path)
    } catch {
      // Already gone.
    }
  }

  // ---- connections -----------------------------------------------------------------------------

  private accept(s: Socket<SocketConn | undefined>): void {
    try {
      this.track(s)
    } catch (err) {
      log.error(`app coordinator: accepting a connection failed: ${errorMessage(err)}`)
      s.terminate()
    }
  }

  private track(s: Socket<SocketConn | undefined>): void {
    const conn = new SocketConn(s, 'app')
    s.data = conn
    if (this.closed) return conn.close()
    const peer: Peer = { conn, rank: null, capture: null, helloTimer: null, reader: new LineReader((l) => this.onLine(peer, l)) }
    this.peers.add(peer)
    const ms = this.opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS
    peer.helloTimer = setTimeout(() => this.drop(peer, `no HELLO within ${ms / 1000} s`), ms)
    conn.onData((bytes) => {
      try {
        if (!peer.reader.push(bytes)) this.drop(peer, 'a line longer than the protocol allows')
      } catch (err) {
        // A bug of ours or an event handler's: lose this connection, not the daemon.
        log.error(`app coordinator: ${errorMessage(err)}`)
        this.drop(peer, 'internal error')
      }
    })
    conn.onClose(() => this.gone(peer))
  }

  private onLine(peer: Peer, text: string): void {
    if (peer.rank === null) return this.hello(peer, text)
    const rank = peer.rank
    const msg = parseRankLine(text)
    switch (msg.kind) {
      case 'request':
        return this.emit(() => this.opts.events.request(rank, msg.req))
      case 'prep':
        return this.emit(() => this.opts.events.prep(rank, msg.status, msg.message))
      case 'done': {
        const cap = peer.capture
        peer.capture = null
        if (!cap) return // late or unsolicited: the capture was already settled
        return msg.ok ? cap.resolve() : cap.reject(new Error(msg.message || 'the rank could not write its state'))
      }
      case 'error':
        return peer.conn.write(line(`ERR ${msg.id} ${msg.message}`))
      case 'bad':
        return this.drop(peer, msg.message)
    }
  }

  private hello(peer: Peer, text: string): void {
    const h = parseHello(text)
    if (!h) return this.drop(peer, 'first line was not HELLO')
    const deny = (why: string) => {
      peer.conn.write(line(`DENIED ${why}`))
      this.drop(peer, why)
    }
    if (h.version !== APP_PROTOCOL_VERSION) return deny(`unsupported protocol version ${h.version} (this daemon speaks ${APP_PROTOCOL_VERSION})`)
    const expected = this.opts.token(h.rank)
    if (expected === undefined) return deny(`rank ${h.rank} is not a rank of this job on this node`)
    if (!sameToken(h.token, expected)) return deny('bad token')
    if (this.byRank.has(h.rank)) return deny(`rank ${h.rank} is already connected`)
    peer.rank = h.rank
    this.byRank.set(h.rank, peer)
    clearTimeout(peer.helloTimer!)
    const dir = this.opts.restartDir(h.rank)
    peer.conn.write(line(dir === null ? 'WELCOME START' : `WELCOME RESTART ${oneLine(dir)}`))
    this.emit(() => this.opts.events.linked(h.rank, h.pid))
  }

  private send(rank: number, text: string): void {
    this.byRank.get(rank)?.conn.write(line(text))
  }

  /** Close a connection (after what we queued for it is written); its rank is unlinked at once. */
  private drop(peer: Peer, why: string): void {
    if (peer.rank !== null) log.debug(`app coordinator: closing rank ${peer.rank}: ${why}`)
    this.gone(peer)
    peer.conn.close()
  }

  private gone(peer: Peer): void {
    peer.reader.stop()
    clearTimeout(peer.helloTimer!)
    if (!this.peers.delete(peer)) return
    const rank = peer.rank
    if (rank === null || this.byRank.get(rank) !== peer) return
    this.byRank.delete(rank)
    peer.capture?.reject(new Error(`rank ${rank} disconnected during the capture`))
    peer.capture = null
    if (!this.closed) this.emit(() => this.opts.events.unlinked(rank))
  }

  private emit(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      log.error(`app coordinator: event handler failed: ${errorMessage(err)}`)
    }
  }
}

const enc = new TextEncoder()
const line = (text: string) => enc.encode(`${text}\n`)

/** Constant-time token comparison (a length mismatch compares the token with itself, then fails). */
function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  // Bun's global crypto.timingSafeEqual: importing node:crypto costs every daemon ~5 ms at start.
  if (a.length !== b.length) return crypto.timingSafeEqual(b, b) && false
  return crypto.timingSafeEqual(a, b)
}
