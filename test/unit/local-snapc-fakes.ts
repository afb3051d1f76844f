/**
 * The LocalSnapc side of the coordinator fakes (see snapc-fakes.ts): a harness that builds a
 * LocalSnapc over temp dirs with recording report/snapshotSink ports and fake pids, a message
 * builder for hnp.ckpt, and a rank's end of the app-coordinator socket in the raw line protocol.
 */
import { join } from 'node:path'
import { LocalSnapc, type LocalSnapcContext } from '../../src/orted/snapc/local-snapc'
import type { SnapshotTarget } from '../../src/orted/snapc/rank-capture'
import type { Params } from '../../src/params/params'
import type { Registry } from '../../src/plugins/registry'
import type { MessageOf, NodeToSnapc, SnapcToNode } from '../../src/wire/messages'
import { JOBID, REF, until } from './snapc-fakes'

export const crc32 = (data: string | Uint8Array) => `crc32:${(Bun.hash.crc32(data) >>> 0).toString(16).padStart(8, '0')}`

export interface SinkChunk {
  target: SnapshotTarget
  path: string
  offset: number
  data: Buffer
  codec: 'raw' | 'zstd'
  last: boolean
}

export interface LocalHarness {
  ls: LocalSnapc
  ctx: LocalSnapcContext
  reports: NodeToSnapc[]
  /** What went through snapshotSink (stage store), in order. */
  chunks: SinkChunk[]
  globalDir: string
  /** "rank op status" of every orted.ckpt report, in order. */
  ckpts(): string[]
  ckptReports(): MessageOf<'orted.ckpt'>[]
  msg(op: MessageOf<'hnp.ckpt'>['op'], o?: { crs?: string; sstore?: string; seq?: number; ranks?: number[]; options?: string[]; text?: string }): SnapcToNode
}

let locals = 0

/** A LocalSnapc for node n1 where the ranks of `pids` run (others are on other nodes). */
export function newLocal(reg: { registry: Registry; params: Params }, root: string, pids: Record<number, number> = { 0: 4000, 1: 4001 }): LocalHarness {
  const id = ++locals
  const h = { reports: [] as NodeToSnapc[], chunks: [] as SinkChunk[], globalDir: join(root, `global${id}`) } as LocalHarness
  h.ctx = {
    jobid: JOBID,
    node: 'n1',
    nodeDir: join(root, `node${id}`),
    sessionDir: join(root, `s${id}`),
    registry: reg.registry,
    params: reg.params,
    report: (m) => h.reports.push(m),
    snapshotSink: (target) => ({
      write: async (path, offset, data, codec, last) => void h.chunks.push({ target, path, offset, data: Buffer.from(data), codec, last }),
    }),
    pidOf: (rank) => pids[rank],
    outputTail: async () => undefined,
  }
  h.ls = new LocalSnapc(h.ctx)
  h.ckptReports = () => h.reports.filter((m): m is MessageOf<'orted.ckpt'> => m.t === 'orted.ckpt')
  h.ckpts = () => h.ckptReports().map((m) => `${m.rank} ${m.op} ${m.status}`)
  h.msg = (op, o = {}) => ({
    t: 'hnp.ckpt',
    jobid: JOBID,
    op,
    store: { sstore: o.sstore ?? 'central', globalDir: h.globalDir, ref: REF, seq: o.seq ?? 0, crs: o.crs ?? 'fake' },
    ranks: o.ranks ?? [0, 1, 2],
    options: o.options ?? [],
    text: o.text,
  })
  return h
}

/** A rank's end of the app-coordinator socket, speaking the raw line protocol. */
export async function rawApp(path: string) {
  const lines: string[] = []
  let buf = ''
  let closed = false
  const s = await Bun.connect({
    unix: path,
    socket: {
      data(_s, d) {
        buf += new TextDecoder().decode(d)
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          lines.push(buf.slice(0, nl))
          buf = buf.slice(nl + 1)
        }
      },
      close() {
        closed = true
      },
    },
  })
  return {
    send: (text: string) => void s.write(`${text}\n`),
    next: async (): Promise<string> => {
      await until(() => lines.length > 0 || closed, 'a line from the daemon')
      if (!lines.length) throw new Error('the daemon closed the connection')
      return lines.shift()!
    },
    end: () => s.end(),
  }
}
