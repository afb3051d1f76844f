/**
 * The requests a rank has sent and not yet had answered (docs/app-protocol.md: every request
 * carries an id the rank chooses; `OK`, `VALUE` or `ERR` carry it back). Settling waits for the
 * checkpoint hold to end (hold.ts), so a reply never lets the app go on while it is captured.
 */
import { fromB64 } from './lines'
import type { Hold } from './hold'

export interface Reply {
  text?: string
  value?: Uint8Array
}

interface Pending {
  what: string
  resolve(r: Reply): void
  reject(err: Error): void
}

export const fail = (what: string, why: string) => new Error(`ompx/app: ${what}: ${why}`)

export class Requests {
  private pending = new Map<number, Pending>()
  private nextId = 1

  constructor(private readonly hold: Hold) {}

  get size(): number {
    return this.pending.size
  }

  /** Send `<verb> <id> [args]` (or queue it while held); resolves with the reply. */
  send(what: string, verb: string, args: string | undefined, write: (line: string) => void): Promise<Reply> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { what, resolve, reject })
      this.hold.send(args === undefined ? `${verb} ${id}` : `${verb} ${id} ${args}`, write)
    })
  }

  /** An `OK`, `VALUE` or `ERR` line; a reply to no pending request is ignored. */
  reply(verb: string, id: number | null, rest: string | undefined): void {
    const p = id === null ? undefined : this.pending.get(id)
    if (!p) return
    this.pending.delete(id!)
    this.hold.deliver(() => {
      if (verb === 'ERR') return p.reject(fail(p.what, rest || 'failed'))
      if (verb === 'OK') return p.resolve({ text: rest })
      const value = fromB64(rest ?? '')
      if (value) p.resolve({ value })
      else p.reject(fail(p.what, 'the daemon sent a value that is not base64'))
    })
  }

  /** The connection is gone: every pending request fails with `why`. */
  failAll(why: string): void {
    for (const p of this.pending.values()) p.reject(fail(p.what, why))
    this.pending.clear()
  }
}
