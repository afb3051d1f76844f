/**
 * The move side of scripts/bench/migrate.ts: a job on simulated nodes with a spare, one rank moved
 * onto the spare with `ompx migrate --json`, and what the move cost: the tool's figures, the gap
 * in the moved rank's lines, and the other ranks' progress while it ran against the same length
 * of time before it. Also checks the run stayed right (checksums / tick sequences).
 */
import { tagRun } from './lib'
import { allAfter, countAt, msPerCount, points, startJob, type JobOptions, type PartSpec, type Stamped } from './migrate-job'
import { runFor, within } from './proc'

export interface MoveRep {
  /** `ompx migrate` spawn to exit. */
  toolMs: number
  /** From the tool's JSON: the rank's downtimeMs, totals.bytes, totals.totalMs, timing. */
  downtimeMs: number
  bytes: number
  totalMs: number
  timing: Record<string, number>
  from: string
  to: string
  /** Largest gap between two of the moved rank's lines around the move, and its usual spacing. */
  gapMs: number
  spacingMs: number
  /** The others' progress per second in the move window / in the same length before it. */
  othersRatio: number
  /** Length of the window before (shorter than the move when the job had not run that long). */
  beforeMs: number
}

export interface MoveOptions extends JobOptions {
  moved: number
  onto: string
  /** Checks the job's whole output once it is over (crs self: checksums); null if right. */
  verify(lines: Stamped[]): string | null
  /** crs self: the job ends by itself; criu: it runs until killed. */
  endsByItself: boolean
}

interface MigrateJson {
  ranks: { rank: number; from: string; to: string; bytes: number; downtimeMs: number }[]
  totals: { bytes: number; totalMs: number }
  timing?: Record<string, number>
}

export async function moveRound(spec: PartSpec, o: MoveOptions): Promise<MoveRep> {
  const tag = tagRun()
  const env = { ...o.env, ...tag.env }
  let kill: (() => Promise<void>) | undefined
  try {
    const job = await startJob(spec, o, env)
    kill = job.kill
    const t0 = performance.now()
    const mig = await runFor([o.bin, 'migrate', '--json', '-r', String(o.moved), '-t', o.onto, String(job.pid)], o.timeoutMs, env)
    const t1 = performance.now()
    if (mig.code !== 0) throw new Error(`ompx migrate: exit ${mig.code}: ${mig.err.trim()}`)
    const doc = JSON.parse(mig.out) as MigrateJson
    const me = doc.ranks.find((r) => r.rank === o.moved)
    if (!me || me.to !== o.onto) throw new Error(`ompx migrate: rank ${o.moved} not moved onto ${o.onto}: ${mig.out.trim()}`)
    // Every rank's next counted line after the move, so the window's end can be interpolated.
    if (!(await job.out.until(allAfter(spec, o.ranks, t1), o.timeoutMs))) throw new Error('the ranks did not all print after the move')
    const lines = job.out.lines

    const mine = points(spec, lines, o.moved)
    let gapMs = 0
    for (let i = 1; i < mine.length; i++) {
      const [ta] = mine[i - 1]!
      const [tb] = mine[i]!
      if (tb > t0 && ta < t1) gapMs = Math.max(gapMs, tb - ta)
    }
    const before = mine.filter(([t]) => t < t0)
    const spacingMs = msPerCount(before) * (before.length > 1 ? (before.at(-1)![1] - before.at(-2)![1]) : 1)

    const w = t1 - t0
    let during = 0
    let prior = 0
    let beforeMs = w
    const others = Array.from({ length: o.ranks }, (_, r) => r).filter((r) => r !== o.moved)
    const pts = others.map((r) => points(spec, lines, r))
    // The window before may not reach further back than every other rank's first line.
    const earliest = Math.max(...pts.map((p) => p[0]![0]))
    beforeMs = Math.min(w, t0 - earliest)
    for (const p of pts) {
      during += countAt(p, t1)! - countAt(p, t0)!
      prior += countAt(p, t0)! - countAt(p, t0 - beforeMs)!
    }
    const othersRatio = during / w / (prior / beforeMs)

    if (o.endsByItself) {
      if ((await within(job.exited, o.timeoutMs)) === 'timeout') throw new Error('the job did not end')
      if ((await job.exited) !== 0) throw new Error(`the job ended with ${await job.exited}: ${(await job.err).trim().split('\n').pop()}`)
      await job.out.done
    } else {
      await job.kill()
      await within(job.out.done, 5000)
    }
    const wrong = o.verify(lines)
    if (wrong) throw new Error(`the moved run is not right: ${wrong}`)
    return {
      toolMs: t1 - t0,
      downtimeMs: me.downtimeMs,
      bytes: doc.totals.bytes,
      totalMs: doc.totals.totalMs,
      timing: doc.timing ?? {},
      from: me.from,
      to: me.to,
      gapMs,
      spacingMs,
      othersRatio,
      beforeMs,
    }
  } finally {
    await kill?.()
    o.leftovers.push(...(await tag.done()))
  }
}

/** crs criu: every rank printed ticks 1, 2, 3, ... once each, in order (none redone, none lost). */
export function ticksInOrder(spec: PartSpec, ranks: number) {
  return (lines: Stamped[]): string | null => {
    for (let r = 0; r < ranks; r++) {
      const ticks = points(spec, lines, r).map(([, c]) => c)
      const bad = ticks.findIndex((c, i) => c !== i + 1)
      if (bad >= 0) return `rank ${r}: tick ${ticks[bad]} where ${bad + 1} was due`
    }
    return null
  }
}

/** crs self: the `rank R checksum X` lines equal those of an uninterrupted run. */
export function sameChecksums(want: Map<number, string>) {
  return (lines: Stamped[]): string | null => {
    const got = new Map(lines.flatMap((l) => {
      const m = /^rank (\d+) checksum ([0-9a-f]{8})$/.exec(l.text)
      return m ? [[Number(m[1]), m[2]!] as [number, string]] : []
    }))
    for (const [r, c] of want) if (got.get(r) !== c) return `rank ${r} checksum ${got.get(r) ?? 'missing'}, uninterrupted ${c}`
    return null
  }
}
