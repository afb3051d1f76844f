/**
 * transport "tcp": the default between hosts and between simulated nodes on loopback addresses
 * (127.0.1.N). `listen('127.0.1.2')` takes an ephemeral port, `listen('127.0.1.2:7000')` a fixed
 * one; URIs look like tcp://127.0.1.2:40123 (IPv6: tcp://[::1]:40123). Nagle is off: the
 * protocol is small request/answer messages where latency matters more than packet count.
 */
import type { RawConn, TransportListener } from '../../src/wire/transport'
import { definePlugin } from '../../src/plugins/types'
import { SocketConn, socketHandlers } from '../../src/wire/socket'

/** Split "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address; port 0 when absent. */
export function splitHostPort(s: string, what: string): { host: string; port: number } {
  let host = s
  let port = '0'
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  if (v6) [host, port] = [v6[1]!, v6[2] ?? '0']
  else if (s.split(':').length === 2) [host, port] = s.split(':') as [string, string]
  else if (s.includes('[') || s.includes(']')) throw new Error(`bad ${what} "${s}" (expected host, host:port or [ipv6]:port)`)
  const n = Number(port)
  if (!/^\d+$/.test(port) || n > 65535) throw new Error(`bad port in ${what} "${s}"`)
  return { host: host || '127.0.0.1', port: n }
}

const fmtHost = (h: string) => (h.includes(':') ? `[${h}]` : h)

export default definePlugin((hostApi) => ({
  kind: 'transport',
  name: 'tcp',
  priority: 20,
  description: 'TCP sockets (tcp://host:port), TCP_NODELAY on',
  schemes: ['tcp'],

  async listen(address: string, onConn: (conn: RawConn) => void): Promise<TransportListener> {
    let where: { host: string; port: number }
    try {
      where = splitHostPort(address, 'tcp listen address')
    } catch (err) {
      throw new hostApi.ActionableError((err as Error).message)
    }
    const { host, port } = where
    let server: Bun.TCPSocketListener<SocketConn | undefined>
    try {
      server = Bun.listen<SocketConn | undefined>({
        hostname: host,
        port,
        data: undefined,
        socket: socketHandlers((s) => {
          s.data = new SocketConn(s, `${fmtHost(s.remoteAddress)}:${s.remotePort}`)
          onConn(s.data)
        }),
      })
    } catch (err) {
      throw new hostApi.ActionableError(`cannot listen on tcp ${fmtHost(host)}:${port}: ${(err as Error).message}`)
    }
    return { uri: `tcp://${fmtHost(host)}:${server.port}`, close: () => server.stop(false) }
  },

  async connect(uri: string): Promise<RawConn> {
    if (!uri.startsWith('tcp://')) throw new Error(`not a tcp URI: "${uri}"`)
    const rest = uri.slice('tcp://'.length).replace(/\/$/, '')
    const { host, port } = splitHostPort(rest, 'tcp URI')
    if (!port) throw new Error(`tcp URI "${uri}" has no port`)
    const remote = `${fmtHost(host)}:${port}`
    try {
      const s = await Bun.connect<SocketConn | undefined>({
        hostname: host,
        port,
        data: undefined,
        socket: socketHandlers((s) => (s.data = new SocketConn(s, remote))),
      })
      return s.data!
    } catch (err) {
      throw new Error(`cannot connect to ${uri}: ${(err as Error).message}`)
    }
  },
}))
