/**
 * transport "unix": Unix domain sockets for peers on the same host (tools talking to a local
 * HNP, daemons of simulated nodes). Access control comes from the file system on top of the
 * HMAC handshake: the socket is 0600 inside a 0700 directory. URIs: unix:///abs/path.sock
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { RawConn, TransportListener } from '../../src/wire/transport'
import { definePlugin } from '../../src/plugins/types'
import { sessionRoot } from '../../src/runtime/session'
import { SocketConn, socketHandlers } from '../../src/wire/socket'

/** sun_path is 108 bytes on Linux (104 on macOS), NUL included. */
const MAX_PATH = 103

let seq = 0

async function connectPath(path: string): Promise<RawConn> {
  const s = await Bun.connect<SocketConn | undefined>({
    unix: path,
    data: undefined,
    socket: socketHandlers((s) => (s.data = new SocketConn(s, `unix:${path}`))),
  })
  return s.data!
}

export default definePlugin((hostApi) => ({
  kind: 'transport',
  name: 'unix',
  priority: 10,
  description: 'Unix domain sockets (unix:///path), same host only; socket 0600 in a 0700 dir',
  schemes: ['unix'],

  async listen(address: string, onConn: (conn: RawConn) => void): Promise<TransportListener> {
    // No path given (or a host name meant for tcp): a fresh socket in the session directory.
    const path = address.includes('/') ? resolve(address) : `${sessionRoot()}/hnp-${process.pid}-${++seq}.sock`
    if (path.length > MAX_PATH) {
      throw new hostApi.ActionableError(`unix socket path ${path} is longer than ${MAX_PATH} bytes; use a shorter TMPDIR`)
    }
    const dir = dirname(path)
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new hostApi.ActionableError(`${path} exists and is not a socket`)
      // A live server keeps its socket; a dead one's file is ours to replace.
      const alive = await connectPath(path).then((c) => (c.close(), true), () => false)
      if (alive) throw new hostApi.ActionableError(`another process is listening on ${path}`)
      unlinkSync(path)
    }
    // umask 0177 while binding: the socket file is born 0600, with no window where it is wider.
    const oldMask = process.umask(0o177)
    let server: Bun.UnixSocketListener<SocketConn | undefined>
    try {
      server = Bun.listen<SocketConn | undefined>({
        unix: path,
        data: undefined,
        socket: socketHandlers((s) => {
          s.data = new SocketConn(s, `unix:${path}`)
          onConn(s.data)
        }),
      })
    } catch (err) {
      throw new hostApi.ActionableError(`cannot listen on unix socket ${path}: ${(err as Error).message}`)
    } finally {
      process.umask(oldMask)
    }
    chmodSync(path, 0o600) // in case the platform ignores umask for sockets
    return {
      uri: `unix://${path}`,
      close() {
        server.stop(false)
        try {
          unlinkSync(path)
        } catch {
          // already gone
        }
      },
    }
  },

  async connect(uri: string): Promise<RawConn> {
    if (!uri.startsWith('unix://')) throw new Error(`not a unix URI: "${uri}"`)
    const path = uri.slice('unix://'.length)
    if (!isAbsolute(path)) throw new Error(`unix URI "${uri}" needs an absolute path (unix:///dir/x.sock)`)
    try {
      return await connectPath(path)
    } catch (err) {
      throw new Error(`cannot connect to ${uri}: ${(err as Error).message}`)
    }
  },
}))
