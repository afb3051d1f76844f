/**
 * The accepting side: listen on a transport, run the handshake on every connection, and hand
 * out a Channel only to peers that proved the secret. A peer that fails (bad MAC, garbage,
 * oversized frame, unknown message, silence) is dropped with one warning line; everyone else
 * keeps being served.
 */
import { log } from '../log'
import type { Transport, TransportListener } from './transport'
import { acceptHandshake, type AcceptOptions } from './auth'
import { parseSecret } from './secret'
import { Channel } from './channel'
import { FramedConn, HANDSHAKE_MAX_FRAME } from './codec'

export interface WireServer extends TransportListener {
  /** Authenticated channels still open. */
  readonly channels: ReadonlySet<Channel>
}

/**
 * Listen on `address` (tcp: host[:port], unix: socket path) and call `onChannel` for each
 * authenticated peer. `close()` stops listening and closes every connection, pending or not.
 */
export async function serve(
  transport: Transport,
  address: string,
  secret: string | Uint8Array,
  onChannel: (ch: Channel) => void,
  opts: AcceptOptions = {},
): Promise<WireServer> {
  const key = parseSecret(secret)
  const channels = new Set<Channel>()
  const pending = new Set<FramedConn>()
  let stopped = false

  const listener = await transport.listen(address, (raw) => {
    const fc = new FramedConn(raw, HANDSHAKE_MAX_FRAME)
    if (stopped) return fc.close()
    pending.add(fc)
    acceptHandshake(fc, key, opts).then(
      (role) => {
        pending.delete(fc)
        const ch = new Channel(fc, role)
        channels.add(ch)
        ch.onClose(() => channels.delete(ch))
        log.debug(`wire: ${role} connected from ${fc.remote}`)
        try {
          onChannel(ch)
        } catch (err) {
          log.error(`wire: setting up the connection from ${fc.remote} failed: ${(err as Error).message}`)
          ch.close()
        }
      },
      // Already logged and closed by the handshake; nothing else to do for this peer.
      () => pending.delete(fc),
    )
  })

  return {
    uri: listener.uri,
    channels,
    close() {
      if (stopped) return
      stopped = true
      listener.close()
      for (const fc of pending) fc.close()
      for (const ch of channels) ch.close()
    },
  }
}
