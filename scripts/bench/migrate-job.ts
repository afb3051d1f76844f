/**
 * The jobs of scripts/bench/migrate.ts: one `ompx run` on simulated nodes whose ranks print
 * progress lines (tagged with --tag-output, time-stamped here as they arrive), and the two things
 * done to it: move one rank with `ompx migrate` (moveRound), or checkpoint --term and restart the
 * whole job (wholeRound, here; moveRound is in migrate-move.ts). Rates and gaps come from the
 * stamped lines, interpolated between a rank's counted lines.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tagRun } from './lib'
import { runFor, within } from './proc'

export interface PartSpec {
  name: 'self' | 'criu'
  prog: string[]
  /** The progress count in one of a rank's lines (iteration, tick), or null. */
  count(text: string): number | null
  /** Every rank reaches this count before anything is measured. */
  readyAt: number
  /** Then this long more, so a window as long as the move exists before it. */
  historyMs: number
}

export interface JobOptions {
  bin: string
  ranks: number
  hosts: string
  snap: string
  env: Record<string, string>
  timeoutMs: number
  /** What a round left behind (then killed), as "pid comm state". */
  leftovers: string[]
}

export interface Stamped {
  t: number
  rank: number
  text: string
}

const TAGGED = /^\[[^,\]]+,(\d+)\]<stdout>:(.*)$/

/** Tagged stdout lines with their arrival time; `until` waits for a predicate over them. */
export function stampedLines(stream: ReadableStream<Uint8Array>) {
  const lines: Stamped[] = []
  let ended = false
  const done = (async () => {
    let partial = ''
    const dec = new TextDecoder()
    for await (const chunk of stream) {
      const t = performance.now()
      const parts = (partial + dec.decode(chunk, { stream: true })).split('\n')
      partial = parts.pop()!
      for (const l of parts) {
        const m = TAGGED.exec(l)
        if (m) lines.push({ t, rank: Number(m[1]), text: m[2]! })
      }
    }
  })()
    .catch(() => {})
    .finally(() => (ended = true))
  return {
    lines,
    done,
    async until(pred: (ls: Stamped[]) => boolean, ms: number): Promise<boolean> {
      const deadline = performance.now() + ms
      while (!pred(lines)) {
        if (ended || performance.now() > deadline) return false
        await Bun.sleep(10)
      }
      return true
    },
  }
}

/** A rank's (time, count) points. */
export function points(spec: PartSpec, lines: Stamped[], rank: number): [number, number][] {
  return lines.flatMap((l) => {
    const c = l.rank === rank ? spec.count(l.text) : null
    return c === null ? [] : [[l.t, c] as [number, number]]
  })
}

/** The count at time t, interpolated between the points around it; null outside them. */
export function countAt(pts: [number, number][], t: number): number | null {
  for (let i = 1; i < pts.length; i++) {
    const [ta, ca] = pts[i - 1]!
    const [tb, cb] = pts[i]!
    if (t >= ta && t <= tb) return tb === ta ? cb : ca + ((cb - ca) * (t - ta)) / (tb - ta)
  }
  return null
}

/** Every rank has a counted line after time `t`. */
export const allAfter = (spec: PartSpec, ranks: number, t: number, minCount = 0) => (ls: Stamped[]) => {
  const seen = new Set<number>()
  for (const l of ls) {
    const c = l.t > t ? spec.count(l.text) : null
    if (c !== null && c >= minCount) seen.add(l.rank)
  }
  return seen.size >= ranks
}

export interface Job {
  pid: number
  out: ReturnType<typeof stampedLines>
  exited: Promise<number>
  err: Promise<string>
  kill(): Promise<void>
}

/** `argv` (ompx run or restart) with the lines stamped; the caller ends it with kill(). */
export function spawnJob(argv: string[], env: Record<string, string>): Job {
  const p = Bun.spawn(argv, { env: { ...process.env, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const err = new Response(p.stderr).text()
  return {
    pid: p.pid,
    out: stampedLines(p.stdout),
    exited: p.exited,
    err,
    async kill() {
      p.kill('SIGTERM')
      if ((await within(p.exited, 20_000)) === 'timeout') p.kill('SIGKILL')
      await within(p.exited, 5_000)
    },
  }
}

/** Start the job, wait until every rank counted readyAt, then historyMs more. */
export async function startJob(spec: PartSpec, o: JobOptions, env: Record<string, string>): Promise<Job> {
  const crs = spec.name === 'self' ? 'self' : 'criu'
  const job = spawnJob(
    [o.bin, 'run', '--launcher', 'local', '-H', o.hosts, '-np', String(o.ranks), '--mca', 'crs', crs, '--mca', 'sstore_base_global_snapshot_dir', o.snap, '--tag-output', '--', ...spec.prog],
    env,
  )
  if (!(await job.out.until(allAfter(spec, o.ranks, 0, spec.readyAt), o.timeoutMs))) {
    await job.kill()
    throw new Error(`${spec.name}: the ranks did not reach ${spec.readyAt}: ${(await within(job.err, 1000)).toString().trim().split('\n').pop()}`)
  }
  await Bun.sleep(spec.historyMs)
  return job
}

export interface WholeRep {
  ckptMs: number
  bytes: number
  /** `ompx restart` spawn until every rank printed its first line. */
  restartLineMs: number
  /** crs self: the same minus the iterations each rank ran before that line (see estimateUp). */
  restartMs: number
}

/** Median spacing of a rank's counted lines per count unit (ms per iteration or tick). */
export function msPerCount(pts: [number, number][]): number {
  const per = pts.slice(1).map(([t, c], i) => (t - pts[i]![0]) / Math.max(1, c - pts[i]![1]))
  per.sort((a, b) => a - b)
  return per[per.length >> 1] ?? 0
}

/** The iteration each rank resumes from: `iter` of its meta.json in the snapshot (crs self). */
function resumedAt(snapRef: string): Map<number, number> {
  const at = new Map<number, number>()
  for (const f of new Bun.Glob('**/meta.json').scanSync({ cwd: snapRef })) {
    try {
      const m = JSON.parse(readFileSync(join(snapRef, f), 'utf8')) as { iter?: number; rank?: number }
      if (typeof m.iter === 'number' && typeof m.rank === 'number') at.set(m.rank, m.iter)
    } catch {}
  }
  return at
}

/** checkpoint --term of the whole job, then restart until every rank runs again. */
export async function wholeRound(spec: PartSpec, o: JobOptions): Promise<WholeRep> {
  const tag = tagRun()
  const env = { ...o.env, ...tag.env }
  let restart: Job | undefined
  try {
    const job = await startJob(spec, o, env)
    const iterMs = Math.max(...Array.from({ length: o.ranks }, (_, r) => msPerCount(points(spec, job.out.lines, r))))
    const ck = await runFor([o.bin, 'checkpoint', '--term', '--json', String(job.pid)], o.timeoutMs, env)
    if (ck.code !== 0) throw new Error(`ompx checkpoint --term: exit ${ck.code}: ${ck.err.trim()}`)
    const doc = JSON.parse(ck.out) as { ref: string; bytes: number }
    if ((await within(job.exited, o.timeoutMs)) === 'timeout') throw new Error('ompx run did not end after checkpoint --term')
    const t0 = performance.now()
    restart = spawnJob([o.bin, 'restart', '--tag-output', '--mca', 'sstore_base_global_snapshot_dir', o.snap, doc.ref], env)
    if (!(await restart.out.until(allAfter(spec, o.ranks, t0), o.timeoutMs))) {
      throw new Error(`ompx restart: ranks not running: ${(await within(restart.err, 1000)).toString().trim().split('\n').pop()}`)
    }
    const first = Array.from({ length: o.ranks }, (_, r) => restart!.out.lines.find((l) => l.rank === r && spec.count(l.text) !== null)!)
    const restartLineMs = Math.max(...first.map((l) => l.t - t0))
    let restartMs = restartLineMs
    if (spec.name === 'self') {
      // A rank prints every 10th iteration: its first line after the restore comes k iterations
      // after it ran again, k = that line's iteration - the one it resumed from.
      const from = resumedAt(join(o.snap, doc.ref))
      restartMs = Math.max(...first.map((l) => l.t - t0 - (spec.count(l.text)! - (from.get(l.rank) ?? spec.count(l.text)!)) * iterMs))
    }
    return { ckptMs: ck.ms, bytes: doc.bytes, restartLineMs, restartMs }
  } finally {
    await restart?.kill()
    o.leftovers.push(...(await tag.done()))
  }
}
