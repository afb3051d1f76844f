/**
 * Checkpoints that must not succeed, and what they leave behind: a second request while one
 * runs ("checkpoint in progress"), a rank killed with SIGKILL and a node daemon killed during a
 * checkpoint, a capture that fails (no snapshot listed, the older one intact and restartable,
 * the job goes on or ends as usual), and a damaged snapshot that restart refuses, naming the file.
 *
 * The fixture ckpt-hold.ts holds a rank inside its checkpoint callback while a file exists, so
 * a checkpoint stays "in progress" exactly as long as the test wants.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { currentMark, leftovers, lines, spawnOmpx, waitUntil } from '../helpers'
import { appArgv, daemonOf, expectRight, expectUserError, HOLD, holdArgv, kill, listedSeqs, readGlobal, reference, snapshotRef, waitIters, type AppShape } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const env = ckptTestEnv('failures', { timeoutMs: 60_000, testTimeoutMs: 90_000 })
const { run, opts, start, checkpoint, heldCheckpoint, failDuring, termAfter, restart, rankPid } = env

/** A ckpt-hold job `p` of its own, with a fresh snapshot directory and hold directory. */
function heldJob(extra: string[] = []) {
  const dir = env.snapDir()
  const hold = env.mkdir('hold-')
  return { dir, hold, p: start(dir, holdArgv(HOLD), { extra, env: { CKPT_HOLD_DIR: hold } }) }
}
/** `ompx restart` of ckpt-hold, which needs its hold directory. */
const restartHeld = (dir: string, ref: string, hold: string, extra: string[] = []) => restart(dir, ref, extra, { env: { CKPT_HOLD_DIR: hold } })


describe('checkpoint in progress', () => {
  test('a second request while one runs gets "checkpoint in progress" and exit != 0; the first one finishes and the job is right', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      const first = await heldCheckpoint(p, hold, 1, ['-s'])
      for (const extra of [[], ['--term'], ['--stop']]) {
        const second = await run(['checkpoint', ...extra, String(p.pid)])
        expectUserError(second, /checkpoint in progress/)
      }
      // Nothing is listed while the first one runs.
      const l = await checkpoint(p, ['-l', '--json'])
      expect((JSON.parse(l.stdout) as { seqs: unknown[] }).seqs).toEqual([])

      unlinkSync(join(hold, 'hold.1'))
      const a = await first.done()
      expect(a.stderr).toBe('')
      expect(a.code).toBe(0)
      expect(snapshotRef(a.stdout).seq).toBe(0)
      expect(lines(a.stdout).some((x) => / Finished - /.test(x))).toBe(true)
      // The rejected requests reserved nothing: the next checkpoint is seq 1.
      expect(snapshotRef((await checkpoint(p)).stdout).seq).toBe(1)

      await expectRight(p.done(), want)
      expect(listedSeqs(dir, snapshotRef(a.stdout).ref)).toEqual([0, 1])
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('checkpoint in progress, big state', () => {
  test('two checkpoints of a job with 4 x 64 MiB of state: the one that comes second says "checkpoint in progress"', async () => {
    const BIG: AppShape = { iters: 60, size: 64, sleepMs: 0 }
    const dir = env.snapDir()
    const p = start(dir, appArgv(BIG))
    try {
      await waitIters(p, NP, 10, 60_000)
      const first = spawnOmpx(['checkpoint', '-s', String(p.pid)], opts())
      // The first one is under way (the HNP accepted it) before the second is asked for.
      await first.waitFor(/ Pending - /, 20_000)
      const second = await run(['checkpoint', String(p.pid)])
      const a = await first.done()
      expect(a.code).toBe(0)
      expect(snapshotRef(a.stdout).seq).toBe(0)
      expectUserError(second, /checkpoint in progress/)
      const r = await p.done()
      expect(listedSeqs(dir, snapshotRef(a.stdout).ref)).toEqual([0])
      // (The reference run only now: two 4 x 64 MiB jobs at once would just slow both down.)
      await expectRight(r, reference('app', BIG))
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('a failure during a checkpoint leaves no snapshot and never damages an older one', () => {
  test('kill -9 of a rank during a checkpoint: the checkpoint fails, no new seq is listed, seq 0 is intact and restart from it works', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob()
    const { ref, before } = await failDuring(p, { dir, hold, rank: 1, iters: 40 }, async (b) => {
      const victim = await rankPid(p, 1)
      const during = await run(['checkpoint', '-l', '--json', String(p.pid)])
      expect((JSON.parse(during.stdout) as { seqs: { seq: number }[] }).seqs.map((s) => s.seq)).toEqual([0])
      kill(victim, 'SIGKILL')

      const failed = await b.done()
      expectUserError(failed, /checkpoint of job \S+ failed: .*rank 1\b.*no snapshot was taken/)
      expect(failed.stderr).toMatch(/seq 0 of ompx_global_snapshot_\S+ is intact/)
      expect(failed.stdout).not.toMatch(/Snapshot Ref/)
      // The rank's death ends the job as any failure would (no recovery asked for).
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/rank 1\b.*SIGKILL/)
    })
    expect(Object.keys(before)).toContain('rank_1/state.bin')
    const info = await restart(dir, ref, ['-i'])
    expect(info.code).toBe(0)
    expect(lines(info.stdout).filter((l) => /^\s*\*?\d+\s+\d{4}-/.test(l))).toHaveLength(1)
    expectUserError(await restart(dir, ref, ['--seq', '1']), /no seq 1/)
    await expectRight(restartHeld(dir, ref, hold), want, true)
  })

  test('kill -9 of the daemon of n2 during a checkpoint: no new seq, seq 0 intact, restart on n1 and n3 works', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob()
    const { ref } = await failDuring(p, { dir, hold, rank: 2 }, async (b) => {
      kill(daemonOf('n2'), 'SIGKILL')
      const failed = await b.done()
      expectUserError(failed, /checkpoint of job \S+ failed: .*no snapshot was taken/)
      expect(failed.stderr).toMatch(/seq 0 of ompx_global_snapshot_\S+ is intact/)
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/node n2 lost/)
      expect(await leftovers(currentMark(), 5000)).toEqual([])
    })
    await expectRight(restartHeld(dir, ref, hold, ['-H', 'n1:2,n3:2', '--launcher', 'local']), want)
  })

  test('a rank whose capture fails: the checkpoint fails with its reason, nothing is listed, the job goes on to the right checksums', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob()
    try {
      await waitIters(p, NP, 20)
      writeFileSync(join(hold, 'fail.3'), '')
      const a = await run(['checkpoint', String(p.pid)])
      expectUserError(a, /rank 3 was told to fail its checkpoint/)
      expect(a.stderr).toMatch(/no snapshot was taken/)
      unlinkSync(join(hold, 'fail.3'))
      // The ranks were let go (ABORT): they go on, and the next checkpoint works.
      await waitIters(p, NP, 60)
      const { ref, seq } = snapshotRef((await checkpoint(p, [], true)).stdout)
      await expectRight(p.done(), want)
      expect(listedSeqs(dir, ref)).toEqual([seq])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('the number of a failed checkpoint is never reused (docs/snapshots.md), even once its directory is cleaned up', async () => {
    const { dir, hold, p } = heldJob()
    const { ref, seq } = await termAfter(p, async () => {
      await waitIters(p, NP, 20)
      // Rank 3 fails, but only once every other rank's image is written: no capture is still
      // writing when the checkpoint is abandoned. Ranks 0-1 (n1) are sealed by then; rank 2
      // shares n2 with rank 3, and a node seals only once all its ranks are captured.
      writeFileSync(join(hold, 'fail.3'), '')
      const a = await heldCheckpoint(p, hold, 3)
      const refDir = () => readdirSync(dir).filter((x) => x.endsWith('.ckpt'))
      const rankFile = (r: number, f: string) => join(dir, refDir()[0]!, '0', `rank_${r}`, f)
      const written = (r: number) => {
        try {
          return typeof JSON.parse(readFileSync(rankFile(r, 'meta.json'), 'utf8')).iter === 'number'
        } catch {
          return false
        }
      }
      await waitUntil(() => refDir().length === 1 && [0, 1].every((r) => existsSync(rankFile(r, 'ompx-rank.json'))) && written(2), 20_000, 'ranks 0-1 sealed, rank 2 written')
      expect(existsSync(rankFile(2, 'ompx-rank.json'))).toBe(false)
      unlinkSync(join(hold, 'hold.3'))
      expectUserError(await a.done(), /rank 3 was told to fail its checkpoint/)
      unlinkSync(join(hold, 'fail.3'))
    })
    expect(listedSeqs(dir, ref)).toEqual([seq])
    // Seq 0 was the failed attempt; "so an interrupted number is never reused".
    expect(seq).toBe(1)
  })
})

describe('abandoned and interrupted checkpoints', () => {
  test('snapc_base_timeout: a checkpoint that does not finish in time is abandoned, nothing is listed, the job goes on and checkpoints again', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob(['--mca', 'snapc_base_timeout', '2'])
    try {
      await waitIters(p, NP, 20)
      writeFileSync(join(hold, 'hold.1'), '')
      const a = await run(['checkpoint', String(p.pid)])
      expectUserError(a, /not finished within 2 s \(snapc_base_timeout\).*no snapshot was taken/)
      const l = await run(['checkpoint', '-l', '--json', String(p.pid)])
      expect((JSON.parse(l.stdout) as { seqs: unknown[] }).seqs).toEqual([])
      // Let the held rank go: it was told to go on (ABORT) and the job carries on.
      unlinkSync(join(hold, 'hold.1'))
      await waitIters(p, NP, 60)
      const { ref, seq } = snapshotRef((await checkpoint(p, [], true)).stdout)
      await expectRight(p.done(), want)
      expect(listedSeqs(dir, ref)).toEqual([seq])
      await expectRight(restartHeld(dir, ref, hold), want)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('kill -9 of ompx run during a checkpoint: global.json still lists only seq 0; a restart works, and its first checkpoint skips and clears the debris', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, p } = heldJob()
    const { ref } = await failDuring(p, { dir, hold, rank: 2 }, async (b) => {
      p.signal('SIGKILL')
      await p.done()
      const failed = await b.done()
      expect(failed.code).not.toBe(0)
      expect(failed.stdout).not.toMatch(/Snapshot Ref/)
      // Everything of the job goes away with its HNP.
      expect(await leftovers(currentMark(), 8000)).toEqual([])
    })
    expect(existsSync(join(dir, ref, '1'))).toBe(true) // the interrupted attempt's debris, never listed
    const info = await restart(dir, ref, ['-i'])
    expect(info.code).toBe(0)
    expect(info.stdout).not.toMatch(/^\s*\*?1\s+\d{4}-/m)

    // Restart, and checkpoint the restarted job: the number above the debris, the debris removed.
    const q = env.spawnRestart(dir, ref, [], { env: { CKPT_HOLD_DIR: hold } })
    try {
      await waitIters(q, NP, 40)
      const c = await checkpoint(q, [], true)
      expect(snapshotRef(c.stdout)).toEqual({ seq: 2, ref })
      await expectRight(q.done(), want)
    } finally {
      q.signal('SIGKILL')
    }
    expect(listedSeqs(dir, ref)).toEqual([0, 2])
    expect(existsSync(join(dir, ref, '1'))).toBe(false)
  })
})

describe('restart refuses a damaged snapshot, naming the file', () => {
  /** A heldJob with two seqs (0 and 1, the latter --term): its directories and the ref. */
  async function twoSeqs(): Promise<{ dir: string; hold: string; ref: string }> {
    const { dir, hold, p } = heldJob()
    const { ref, seq } = await termAfter(p, async () => {
      await waitIters(p, NP, 20)
      await checkpoint(p)
    })
    expect(seq).toBe(1)
    return { dir, hold, ref }
  }

  test('one flipped byte, a truncated file, a missing file, a damaged global.json', async () => {
    const want = reference('hold', HOLD)
    const { dir, hold, ref } = await twoSeqs()
    const seq1 = join(dir, ref, '1')
    const restart = (extra: string[] = []) => restartHeld(dir, ref, hold, extra)

    // One byte in the middle of rank 2's image.
    const img = join(seq1, 'rank_2', 'state.bin')
    const good = readFileSync(img)
    const bad = Buffer.from(good)
    bad[bad.length >> 1]! ^= 0x01
    writeFileSync(img, bad)
    const r1 = await restart()
    expectUserError(r1, /rank_2\/state\.bin is corrupt/)
    expect(r1.stderr).toMatch(/seq 1\b/)
    expect(r1.stdout).not.toMatch(/^rank \d/m) // no rank was started
    // The older seq is not affected: restart from it works.
    await expectRight(restart(['--seq', '0']), want)
    writeFileSync(img, good)

    // A truncated file and a missing one.
    const meta = join(seq1, 'rank_0', 'meta.json')
    const metaText = readFileSync(meta)
    truncateSync(meta, 3)
    expectUserError(await restart(), /rank_0\/meta\.json has the wrong size/)
    unlinkSync(meta)
    expectUserError(await restart(), /rank_0\/meta\.json is missing/)
    writeFileSync(meta, metaText)

    // Repaired: it restarts from seq 1.
    await expectRight(restart(), want)

    // A damaged global.json is an error naming it.
    const gj = join(dir, ref, 'global.json')
    writeFileSync(gj, readFileSync(gj, 'utf8').slice(0, 100))
    const r4 = await restart()
    expectUserError(r4, /global\.json/)
    expect(r4.stdout).toBe('')
  })

  test('sstore_base_verify size checks sizes only: a flipped byte gets through, a truncated file does not', async () => {
    const { dir, hold, ref } = await twoSeqs()
    const restart = (extra: string[]) => restartHeld(dir, ref, hold, extra)
    expectUserError(await restart(['--mca', 'sstore_base_verify', 'bytes']), /sstore_base_verify must be one of checksum, size, got "bytes"/)
    const img = join(dir, ref, '1', 'rank_2', 'state.bin')
    const bad = readFileSync(img)
    bad[bad.length >> 1]! ^= 0x01
    writeFileSync(img, bad)
    // The ranks are started from the damaged image: nothing read it before them.
    const sized = await restart(['--mca', 'sstore_base_verify', 'size'])
    expect(sized.stderr).not.toMatch(/corrupt/)
    expect(sized.stdout).toMatch(/^rank 2 /m)
    truncateSync(img, 3)
    expectUserError(await restart(['--mca', 'sstore_base_verify', 'size']), /rank_2\/state\.bin has the wrong size/)
  })

  test('with sstore_base_checksum sha256 a flipped byte is caught as well', async () => {
    const { dir, p } = heldJob(['--mca', 'sstore_base_checksum', 'sha256'])
    const { ref } = await termAfter(p, 10)
    const sums = readGlobal(dir, ref).seqs[0]!.ranks.flatMap((r) => r.files.map((f) => f.sum))
    for (const s of sums) expect(s).toMatch(/^sha256:[0-9a-f]{64}$/)
    const img = join(dir, ref, '0', 'rank_3', 'state.bin')
    const b = readFileSync(img)
    b[0]! ^= 0x80
    writeFileSync(img, b)
    const r = await restart(dir, ref)
    expectUserError(r, /rank_3\/state\.bin is corrupt \(checksum sha256:/)
  })
})
