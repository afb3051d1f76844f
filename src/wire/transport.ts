/**
 * What a transport is (tcp, unix; served by transport plugins): a way to listen and dial that
 * yields raw byte streams. The wire layer adds framing and the HMAC handshake on top, so these
 * types live here, below the plugin contract that declares transport plugins.
 */

/** A raw, unauthenticated byte stream; src/wire adds framing and the HMAC handshake on top. */
export interface RawConn {
  /** Human-readable peer address for logs ("127.0.1.2:41234", "unix:/path"). */
  readonly remote: string
  /**
   * Send `bytes`, which the connection now owns: the caller must not change them afterwards.
   * `output`: a frame of rank output, which control frames may overtake (a transport without
   * lanes just sends everything in order).
   */
  write(bytes: Uint8Array, output?: boolean): void
  onData(cb: (bytes: Uint8Array) => void): void
  onClose(cb: (err?: Error) => void): void
  close(): void
}

export interface TransportListener {
  /** What peers pass to `connect`, e.g. tcp://127.0.1.1:40123 or unix:///run/x.sock */
  uri: string
  close(): void
}

export interface Transport {
  /** URI schemes this transport serves ("tcp", "unix"). */
  schemes: string[]
  /** Listen on an address (host for tcp, path for unix; port 0 = any). */
  listen(address: string, onConn: (conn: RawConn) => void): Promise<TransportListener>
  connect(uri: string): Promise<RawConn>
}
