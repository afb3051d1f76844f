/**
 * Periodic and automatic checkpoint/restart of `ompx run`: --ckpt-interval with --keep (seqs
 * grow, at most N are kept), and --enable-recovery: after kill -9 of a rank, or of the daemon of
 * a node, the job is restarted from its last snapshot (on the surviving nodes) and finishes with
 * the uninterrupted checksums; without a snapshot, or past --max-restarts, it ends as before.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { cmdlineOf, currentMark, leftovers, lines, waitUntil, type OmpxProcess } from '../helpers'
import { APP as APP_200, appArgv, checksums, daemonOf, expectRight, HOLD as HOLD_200, holdArgv, kill, listedSeqs, rankProcs, reference, snapshotRef, waitIters } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const { run, opts, snapDir, start, checkpoint, termAfter, restart, spawnRestart, rankPid } = ckptTestEnv('recovery', { timeoutMs: 90_000, testTimeoutMs: 120_000 })

/** The usual shapes, 300 iterations long. */
const APP = { ...APP_200, iters: 300 }
const HOLD = { ...HOLD_200, iters: 300 }
const RECOVERY = ['--enable-recovery', '--max-restarts', '2', '--recovery-delay', '0.2']
const startJob = (dir: string, argv: string[], extra: string[]) => start(dir, argv, { extra })

/** A first checkpoint (seq 0) of job `p` once every rank is at iteration 20; its ref. */
async function seq0(p: OmpxProcess): Promise<string> {
  await waitIters(p, NP, 20)
  return snapshotRef((await checkpoint(p)).stdout).ref
}

/** rank -> iteration it says it was restarted at (ckpt-hold.ts). */
function restartedAt(stdout: string): Map<number, number> {
  const m = new Map<number, number>()
  for (const l of lines(stdout)) {
    const x = /^rank (\d+) restarted at (\d+) from /.exec(l)
    if (x) m.set(Number(x[1]), Number(x[2]))
  }
  return m
}

async function waitRestarted(p: OmpxProcess, times = 1): Promise<void> {
  await waitUntil(
    () => lines(p.stdout()).filter((l) => / restarted at /.test(l)).length >= NP * times || p.proc.exitCode !== null,
    40_000,
    `every rank restarted (${times})`,
  )
}

describe('periodic checkpoints', () => {
  test('--ckpt-interval 1s --keep 2: seq numbers grow, at most 2 are listed at any time, the job is not disturbed, and the last one restarts', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const p = startJob(dir, appArgv(APP), ['--ckpt-interval', '1s', '--keep', '2'])
    const seen: number[][] = []
    let ref = ''
    try {
      await waitIters(p, NP, 10)
      // Watch the listing until the fifth checkpoint (seq 4) is there.
      while (!(seen.at(-1)?.some((s) => s >= 4))) {
        const l = await run(['checkpoint', '-l', '--json', String(p.pid)])
        if (l.code !== 0) {
          if (p.proc.exitCode !== null) break // the job just ended
          throw new Error(`ompx checkpoint -l failed: ${l.stderr}`)
        }
        const doc = JSON.parse(l.stdout) as { ref: string; seqs: { seq: number }[] }
        ref = doc.ref
        seen.push(doc.seqs.map((s) => s.seq))
        // On disk: the kept seqs plus at most the one being written.
        if (existsSync(join(dir, ref))) {
          const onDisk = readdirSync(join(dir, ref), { withFileTypes: true }).filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
          expect(onDisk.length).toBeLessThanOrEqual(3)
        }
        await Bun.sleep(250)
      }
      const r = await p.done()
      expect(r.stderr).not.toMatch(/periodic checkpoint failed/)
      await expectRight(r, want)
    } finally {
      p.signal('SIGKILL')
    }
    expect(seen.at(-1)!.some((s) => s >= 4)).toBe(true)
    for (const s of seen) {
      expect(s.length).toBeLessThanOrEqual(2)
      // The newest ones, in order, consecutive.
      if (s.length === 2) expect(s[1]! - s[0]!).toBe(1)
    }
    const maxes = seen.filter((s) => s.length).map((s) => Math.max(...s))
    for (let i = 1; i < maxes.length; i++) expect(maxes[i]!).toBeGreaterThanOrEqual(maxes[i - 1]!)
    expect(maxes.at(-1)!).toBeGreaterThan(maxes[0]!)

    const listed = listedSeqs(dir, ref)
    expect(listed.length).toBeGreaterThanOrEqual(1)
    expect(listed.length).toBeLessThanOrEqual(2)
    expect(Math.min(...listed)).toBeGreaterThanOrEqual(3)
    // Older seqs were deleted from disk, not only from global.json.
    const onDisk = readdirSync(join(dir, ref)).filter((x) => /^\d+$/.test(x)).map(Number).sort((a, b) => a - b)
    expect(onDisk).toEqual(listed)

    await expectRight(restart(dir, ref), want)
  })
})

describe('automatic recovery', () => {
  test('kill -9 of a rank: the job restarts from the last snapshot with a message and finishes with the right checksums; later checkpoints continue the snapshot', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), RECOVERY)
    try {
      const ref = await seq0(p)
      await waitIters(p, NP, 40)
      kill(await rankPid(p, 2), 'SIGKILL')
      await waitRestarted(p)
      const at = restartedAt(p.stdout())
      expect([...at.keys()].sort()).toEqual([0, 1, 2, 3])
      for (const i of at.values()) expect(i).toBeGreaterThanOrEqual(20)
      expect(p.stderr()).toMatch(/rank 2\b.*SIGKILL.*restarting the job from snapshot seq 0 of ompx_global_snapshot_\S+ \(restart 1 of 2\)/)

      // The recovered job is checkpointable, into the same snapshot, with the next seq.
      expect(snapshotRef((await checkpoint(p, [], true)).stdout)).toEqual({ seq: 1, ref })

      await expectRight(p.done(), want)
      expect(listedSeqs(dir, ref)).toEqual([0, 1])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('kill -9 of the daemon of n2: the job restarts from the last snapshot on n1 alone and finishes with the right checksums', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), RECOVERY)
    try {
      const ref = await seq0(p)
      const oldN2 = (await rankProcs(p.pid, opts())).filter((x) => x.node === 'n2').map((x) => x.pid)
      expect(oldN2).toHaveLength(2)
      kill(daemonOf('n2'), 'SIGKILL')
      await waitRestarted(p)
      expect(p.stderr()).toMatch(/node n2 lost/)
      expect(p.stderr()).toMatch(new RegExp(`restarting the job from snapshot seq 0 of ${ref.replaceAll('.', '\\.')} on n1\\b`))
      // Where the ranks run now: n1 only; the old ranks of n2 are gone.
      const now = await rankProcs(p.pid, opts())
      expect(now.map((x) => x.node)).toEqual(['n1', 'n1', 'n1', 'n1'])
      for (const pid of oldN2) expect(cmdlineOf(pid)).toBe('')
      await expectRight(p.done(), want)
      expect(await leftovers(currentMark(), 5000)).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('stage store: kill -9 of the daemon of n2; the images are staged to n1 and the job finishes right', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), [...RECOVERY, '--mca', 'sstore', 'stage', '--mca', 'sstore_stage_compress', 'zstd'])
    try {
      await waitIters(p, NP, 20)
      await checkpoint(p)
      kill(daemonOf('n2'), 'SIGKILL')
      const r = await expectRight(p.done(), want)
      expect(r.stderr).toMatch(/node n2 lost/)
      expect(r.stderr).toMatch(/restarting the job from snapshot seq 0 of \S+ on n1\b/)
      expect(restartedAt(r.stdout).size).toBe(NP)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('recovery from a periodic checkpoint (--ckpt-interval) after kill -9 of a rank', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), [...RECOVERY, '--ckpt-interval', '1s'])
    try {
      await waitUntil(() => {
        try {
          const refs = readdirSync(dir).filter((x) => x.endsWith('.ckpt'))
          return refs.length === 1 && listedSeqs(dir, refs[0]!).length > 0
        } catch {
          return false
        }
      }, 30_000, 'a periodic checkpoint')
      kill(await rankPid(p, 1), 'SIGKILL')
      const r = await expectRight(p.done(), want)
      expect(r.stderr).toMatch(/restarting the job from snapshot seq \d+ of /)
      expect(restartedAt(r.stdout).size).toBe(NP)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('ompx restart --enable-recovery: a restarted job is recovered from the latest seq after kill -9 of a rank', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const { ref } = await termAfter(startJob(dir, holdArgv(HOLD), []), 20)
    const q = spawnRestart(dir, ref, RECOVERY)
    try {
      await waitRestarted(q)
      await waitIters(q, NP, 50)
      expect(snapshotRef((await checkpoint(q)).stdout)).toEqual({ seq: 1, ref })
      kill(await rankPid(q, 3), 'SIGKILL')
      await waitRestarted(q, 2)
      expect(q.stderr()).toMatch(new RegExp(`restarting the job from snapshot seq 1 of ${ref.replaceAll('.', '\\.')}`))
      const r = await expectRight(q.done(), want)
      // The second start went on from seq 1 (iteration 50 or later).
      const second = lines(r.stdout).filter((l) => / restarted at /.test(l)).slice(NP)
      for (const l of second) expect(Number(/ restarted at (\d+)/.exec(l)![1])).toBeGreaterThanOrEqual(50)
    } finally {
      q.signal('SIGKILL')
    }
  })

  test('without a snapshot yet, the failure ends the job as before', async () => {
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), RECOVERY)
    try {
      await waitIters(p, NP, 10)
      kill(await rankPid(p, 3), 'SIGKILL')
      const r = await p.done()
      expect(r.code).toBe(137)
      expect(r.stderr).toMatch(/rank 3\b.*SIGKILL/)
      expect(r.stderr).toMatch(/no snapshot to recover from/)
      expect(checksums(r.stdout)).toEqual({})
      expect(restartedAt(r.stdout).size).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('--max-restarts 1: the first failure is recovered, the second ends the job', async () => {
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), ['--enable-recovery', '--max-restarts', '1', '--recovery-delay', '0.2'])
    try {
      await waitIters(p, NP, 20)
      await checkpoint(p)
      kill(await rankPid(p, 0), 'SIGKILL')
      await waitRestarted(p)
      expect(p.stderr()).toMatch(/\(restart 1 of 1\)/)
      kill(await rankPid(p, 0), 'SIGKILL')
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/not recovering: --max-restarts 1 reached/)
      expect(checksums(r.stdout)).toEqual({})
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('a user\'s SIGTERM is not a failure: no recovery', async () => {
    const dir = snapDir()
    const p = startJob(dir, holdArgv(HOLD), RECOVERY)
    try {
      await waitIters(p, NP, 20)
      await checkpoint(p)
      p.signal('SIGTERM')
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).not.toMatch(/restarting the job/)
      expect(restartedAt(r.stdout).size).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
  })
})
