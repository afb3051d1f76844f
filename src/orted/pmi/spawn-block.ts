/**
 * PMI-1's spawn request (MPI_Comm_spawn, MPI_Comm_spawn_multiple), as MPICH's simple client
 * writes it (PMI_Spawn_multiple): one block per app, each `mcmd=spawn` then one `key=value` per
 * line (nprocs, execname, totspawns, spawnssofar, argcnt + arg1.., preput_num + preput_key_N /
 * preput_val_N, info_num + info_key_N / info_val_N) and `endcmd`. The request is complete when
 * `totspawns` blocks have ended; only then is it answered (one `spawn_result`), as Hydra does.
 * A value is the rest of its line, so arguments may hold spaces and `=`.
 */
import type { SpawnAppWire } from '../../wire/messages'

/** Most lines one spawn request may take (arguments and info included). */
const MAX_SPAWN_LINES = 4096
/** Most ranks one spawn request may ask for (a sanity bound, not a slot limit). */
const MAX_SPAWN_PROCS = 4096

export type SpawnParse = { ok: true; apps: SpawnAppWire[]; preput: [string, string][] } | { ok: false; why: string }

export class SpawnBlock {
  private readonly segments: Map<string, string>[] = []
  private current = new Map<string, string>()
  private lines = 0
  private broken: string | null = null

  /** Feed the next line (the first is the `mcmd=spawn` that opened the block); null while more is due. */
  line(raw: string): SpawnParse | null {
    const text = raw.replace(/\r$/, '')
    if (++this.lines > MAX_SPAWN_LINES) return { ok: false, why: `a spawn request longer than ${MAX_SPAWN_LINES} lines` }
    if (text.trim() === 'endcmd') {
      this.segments.push(this.current)
      this.current = new Map()
      const total = Number(this.segments[0]!.get('totspawns') ?? 1)
      if (this.segments.length < (Number.isInteger(total) && total > 0 ? total : 1)) return null
      return this.broken ? { ok: false, why: this.broken } : this.parse()
    }
    const eq = text.indexOf('=')
    if (eq <= 0) {
      this.broken ??= `"${text.slice(0, 40)}" in a spawn request is not key=value`
      return null
    }
    const key = text.slice(0, eq)
    if (key === 'mcmd' && this.current.size > 0) {
      // A new block without endcmd before it: what came so far is one app.
      this.segments.push(this.current)
      this.current = new Map()
    }
    this.current.set(key, text.slice(eq + 1))
    return null
  }

  private parse(): SpawnParse {
    const apps: SpawnAppWire[] = []
    let total = 0
    for (const [i, seg] of this.segments.entries()) {
      const where = this.segments.length > 1 ? ` (app ${i})` : ''
      const np = count(seg, 'nprocs')
      if (np === null || np < 1) return { ok: false, why: `spawn needs nprocs=N (N >= 1)${where}` }
      total += np
      if (total > MAX_SPAWN_PROCS) return { ok: false, why: `spawn of more than ${MAX_SPAWN_PROCS} processes` }
      const exec = seg.get('execname')
      if (!exec) return { ok: false, why: `spawn needs execname=${where}` }
      const argv = [exec]
      for (let k = 1; k <= (count(seg, 'argcnt') ?? 0); k++) {
        const arg = seg.get(`arg${k}`)
        if (arg === undefined) return { ok: false, why: `spawn: arg${k} is missing${where}` }
        argv.push(arg)
      }
      const info = pairs(seg, 'info_num', 'info_key_', 'info_val_')
      if (typeof info === 'string') return { ok: false, why: `${info}${where}` }
      apps.push({ np, argv, info })
    }
    // Every block repeats the preput pairs (they are the job's, not an app's): the first one counts.
    const preput = pairs(this.segments[0]!, 'preput_num', 'preput_key_', 'preput_val_')
    if (typeof preput === 'string') return { ok: false, why: preput }
    return { ok: true, apps, preput }
  }
}

function count(seg: Map<string, string>, key: string): number | null {
  const v = seg.get(key)
  if (v === undefined) return null
  const n = Number(v)
  return Number.isInteger(n) && n >= 0 ? n : null
}

/** `num` pairs key_0/val_0 ... , or why they are broken. */
function pairs(seg: Map<string, string>, num: string, keyPrefix: string, valPrefix: string): [string, string][] | string {
  const n = count(seg, num) ?? 0
  if (n > MAX_SPAWN_LINES) return `spawn: ${num} ${n} is too large`
  const out: [string, string][] = []
  for (let i = 0; i < n; i++) {
    const k = seg.get(`${keyPrefix}${i}`)
    const v = seg.get(`${valPrefix}${i}`)
    if (k === undefined || v === undefined) return `spawn: ${keyPrefix}${i} or ${valPrefix}${i} is missing`
    out.push([k, v])
  }
  return out
}
