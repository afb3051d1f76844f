/**
 * One `mcmd=spawn` ... `endcmd` block of PMI-1, as MPICH's simple client writes it: one
 * `key=value` per line (the value is the rest of the line: arguments may hold spaces and `=`):
 * nprocs, execname, totspawns, spawnssofar, arg1..argN, argcnt, preput_num and
 * preput_key_i/preput_val_i, info_num and info_key_i/info_val_i.
 */
import type { SpawnBlocks } from './pmi-job'

/** Most ranks one spawn command may ask for. */
const MAX_SPAWN_PROCS = 4096

type ParsedBlock = { app: SpawnBlocks['apps'][number]; preput: [string, string][]; sofar: number; total: number } | { why: string }

export function spawnBlock(lines: string[]): ParsedBlock {
  const f = new Map<string, string>()
  for (const line of lines) {
    const eq = line.indexOf('=')
    if (eq <= 0) return { why: `spawn block line "${line.slice(0, 40)}" is not key=value` }
    f.set(line.slice(0, eq), line.slice(eq + 1))
  }
  const int = (k: string, min: number, max: number) => {
    const n = Number(f.get(k))
    return Number.isInteger(n) && n >= min && n <= max ? n : null
  }
  const np = int('nprocs', 1, MAX_SPAWN_PROCS)
  const exe = f.get('execname')
  const total = int('totspawns', 1, 1024) ?? 1
  const sofar = int('spawnssofar', 1, total) ?? 1
  const argcnt = int('argcnt', 0, 4096) ?? 0
  if (np === null) return { why: `spawn needs nprocs=1..${MAX_SPAWN_PROCS}` }
  if (!exe) return { why: 'spawn needs execname=' }
  const argv = [exe]
  for (let i = 1; i <= argcnt; i++) {
    const a = f.get(`arg${i}`)
    if (a === undefined) return { why: `spawn: argcnt=${argcnt} but arg${i} is missing` }
    argv.push(a)
  }
  const pairs = (prefix: string, num: string): [string, string][] | null => {
    const n = int(num, 0, 1024) ?? 0
    const out: [string, string][] = []
    for (let i = 0; i < n; i++) {
      const k = f.get(`${prefix}_key_${i}`)
      const v = f.get(`${prefix}_val_${i}`)
      if (k === undefined || v === undefined) return null
      out.push([k, v])
    }
    return out
  }
  const preput = pairs('preput', 'preput_num')
  const info = pairs('info', 'info_num')
  if (!preput || !info) return { why: 'spawn: a preput or info key without its value' }
  return { app: { np, argv, info }, preput, sofar, total }
}
