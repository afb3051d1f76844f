/**
 * Reading a Slurm allocation from the environment of a batch script or `salloc` shell:
 * hostlist expressions (`n[01-04,07]`, `a1,b[2-3]`, `gpu-[1-2]-x`), the `2(x3),1` counts of
 * SLURM_TASKS_PER_NODE, and the Allocation they describe. Pure functions, so they are unit
 * tested without a Slurm installation.
 */
import { ActionableError } from '../errors'
import type { Allocation } from './job'

/** Refuse expansions beyond this: a typo like n[1-9999999] must not eat the HNP's memory. */
const MAX_HOSTS = 1_000_000

/** Split on commas outside brackets: "a1,b[2-3,5]" -> ["a1", "b[2-3,5]"]. */
function splitTop(list: string, what: string): string[] {
  const parts: string[] = []
  let depth = 0
  let cur = ''
  for (const c of list) {
    if (c === '[') depth++
    if (c === ']') depth--
    if (depth < 0 || depth > 1) throw new ActionableError(`${what}: misplaced bracket in "${list}"`)
    if (c === ',' && depth === 0) {
      parts.push(cur)
      cur = ''
    } else cur += c
  }
  if (depth !== 0) throw new ActionableError(`${what}: unclosed "[" in "${list}"`)
  parts.push(cur)
  return parts.map((p) => p.trim()).filter((p) => p !== '')
}

/** "01-04,07" -> ["01","02","03","04","07"]; the width of a range's first number is kept. */
function expandRanges(body: string, what: string): string[] {
  const out: string[] = []
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) throw new ActionableError(`${what}: "[${body}]" holds "${part}", expected N or N-M`)
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) throw new ActionableError(`${what}: range "${part}" runs backwards`)
    if (out.length + hi - lo + 1 > MAX_HOSTS) throw new ActionableError(`${what}: "[${body}]" expands to too many hosts`)
    for (let n = lo; n <= hi; n++) out.push(String(n).padStart(m[1]!.length, '0'))
  }
  return out
}

/** Expand a Slurm hostlist expression into host names, in order. */
export function expandNodelist(list: string, what = 'nodelist'): string[] {
  const hosts: string[] = []
  for (const item of splitTop(list, what)) {
    // Several bracket groups ("r[1-2]n[1-3]") multiply out, the leftmost varying slowest.
    let names = ['']
    for (const seg of item.split(/(\[[^\]]*\])/)) {
      const choices = seg.startsWith('[') ? expandRanges(seg.slice(1, -1), what) : [seg]
      names = names.flatMap((prefix) => choices.map((c) => prefix + c))
      if (hosts.length + names.length > MAX_HOSTS) throw new ActionableError(`${what}: "${list}" expands to too many hosts`)
    }
    hosts.push(...names)
  }
  return hosts
}

/**
 * The inverse, for srun's --nodelist: consecutive numbers of one prefix and digit width become
 * a range ("n01,n02,n03,n07" -> "n[01-03,07]"). Equal widths keep the expansion exact.
 */
export function compressNodelist(names: string[]): string {
  const groups = new Map<string, { prefix: string; width: number; nums: number[] }>()
  const order: (string | { key: string })[] = []
  for (const name of names) {
    const m = /^(.*?)(\d+)$/.exec(name)
    if (!m || name.includes('[') || name.includes(',')) {
      order.push(name)
      continue
    }
    const key = `${m[1]}\u0000${m[2]!.length}`
    let g = groups.get(key)
    if (!g) {
      groups.set(key, (g = { prefix: m[1]!, width: m[2]!.length, nums: [] }))
      order.push({ key })
    }
    g.nums.push(Number(m[2]))
  }
  return order
    .map((o) => {
      if (typeof o === 'string') return o
      const g = groups.get(o.key)!
      const nums = [...new Set(g.nums)].sort((a, b) => a - b)
      const pad = (n: number) => String(n).padStart(g.width, '0')
      if (nums.length === 1) return g.prefix + pad(nums[0]!)
      const ranges: string[] = []
      for (let i = 0; i < nums.length; ) {
        let j = i
        while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++
        ranges.push(i === j ? pad(nums[i]!) : `${pad(nums[i]!)}-${pad(nums[j]!)}`)
        i = j + 1
      }
      return `${g.prefix}[${ranges.join(',')}]`
    })
    .join(',')
}

/** "2(x3),1" -> [2, 2, 2, 1] (also the format of SLURM_JOB_CPUS_PER_NODE). */
export function parseTasksPerNode(spec: string, what = 'SLURM_TASKS_PER_NODE'): number[] {
  const out: number[] = []
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part)
    if (!m) throw new ActionableError(`${what}="${spec}": cannot read "${part}", expected N or N(xM)`)
    const times = m[2] === undefined ? 1 : Number(m[2])
    if (out.length + times > MAX_HOSTS) throw new ActionableError(`${what}="${spec}" counts too many nodes`)
    for (let i = 0; i < times; i++) out.push(Number(m[1]))
  }
  return out
}

/** The nodes of the Slurm job we run in, or undefined outside one. */
export function slurmNodeNames(env: Record<string, string | undefined> = process.env): string[] | undefined {
  if (!env.SLURM_JOB_ID) return undefined
  const list = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST
  if (!list) return undefined
  return expandNodelist(list, env.SLURM_JOB_NODELIST ? 'SLURM_JOB_NODELIST' : 'SLURM_NODELIST')
}

/**
 * The allocation of the Slurm job we run in: one node per SLURM_JOB_NODELIST entry, slots from
 * SLURM_TASKS_PER_NODE (what `sbatch -n`/`--ntasks-per-node` asked for, as Open MPI reads it),
 * else SLURM_JOB_CPUS_PER_NODE, else 1. Undefined outside a Slurm job.
 */
export function allocationFromSlurm(env: Record<string, string | undefined> = process.env): Allocation | undefined {
  const names = slurmNodeNames(env)
  if (!names) return undefined
  const countVar = env.SLURM_TASKS_PER_NODE ? 'SLURM_TASKS_PER_NODE' : env.SLURM_JOB_CPUS_PER_NODE ? 'SLURM_JOB_CPUS_PER_NODE' : undefined
  const counts = countVar ? parseTasksPerNode(env[countVar]!, countVar) : names.map(() => 1)
  if (counts.length !== names.length) {
    throw new ActionableError(
      `Slurm job ${env.SLURM_JOB_ID}: ${countVar} counts ${counts.length} nodes but the nodelist has ${names.length}; is this shell's Slurm environment from another job?`,
    )
  }
  return {
    nodes: names.map((name, i) => ({ name, slots: Math.max(1, counts[i]!), slotsGiven: countVar !== undefined })),
    source: `Slurm job ${env.SLURM_JOB_ID}`,
  }
}
