/**
 * Coordinated checkpoint/restart with CRS self on simulated nodes, the paths that should work:
 * a checkpoint mid-run (the job goes on), the snapshot's layout and listing, progress and timing
 * output, --term and a restart on the same nodes and on other nodes, --seq, and --stop followed
 * by SIGCONT. The fixture app's final checksums must always equal an uninterrupted run's.
 */
import { describe, expect, test } from 'bun:test'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { isAlive, lines, REPO, waitUntil, type OmpxProcess } from '../helpers'
import { APP, appArgv, checksums, CKPT_APP, expectRight, HOLD, holdArgv, iterations, kill, lastIter, procState, rankProcs, readGlobal, reference, snapshotRef, waitIters } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const { tmp, opts, snapDir, start, checkpoint, termAfter, restart, spawnRestart } = ckptTestEnv('basic', { timeoutMs: 60_000, testTimeoutMs: 90_000 })

/** Every rank of a restart went on from a snapshot taken after iteration `after`. */
function expectResumedAfter(stdout: string, after: number): void {
  for (let rank = 0; rank < NP; rank++) expect(Math.min(...iterations(stdout, rank))).toBeGreaterThan(after)
}

describe('checkpoint of a running job', () => {
  test('mid-run checkpoints: the job goes on to the uninterrupted checksums; seqs listed, laid out and timed as documented', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const p = start(dir, appArgv(APP))
    try {
      await waitIters(p, NP, 20)
      const a = await checkpoint(p, [], true)
      expect(lines(a.stdout)).toHaveLength(1)
      const first = snapshotRef(a.stdout)
      expect(first.seq).toBe(0)
      expect(first.ref).toMatch(/^ompx_global_snapshot_\S+\.ckpt$/)

      // -s: the states in order, each "[ delta / total] <State> - <ref>"; --timing: the phases.
      const b = await checkpoint(p, ['-s', '--timing'], true)
      const status = lines(b.stdout).filter((l) => l.startsWith('['))
      for (const l of status) expect(l).toMatch(new RegExp(`^\\[\\s*\\d+\\.\\d\\d /\\s*\\d+\\.\\d\\d\\]\\s+\\S.* - ${first.ref.replaceAll('.', '\\.')}$`))
      expect(status.map((l) => /\]\s+(.+?) - /.exec(l)![1])).toEqual(['Requested', 'Pending', 'Running', 'Checkpoint Established', 'Continuing', 'Finished'])
      expect(snapshotRef(b.stdout)).toEqual({ seq: 1, ref: first.ref })
      for (const phase of ['Running', 'Local finish', 'Store sync', 'Establish', 'Continue', 'Total', 'Size']) expect(b.stdout).toContain(phase)

      const c = await checkpoint(p, ['--json'])
      const doc = JSON.parse(c.stdout) as { ref: string; seq: number; dir: string; bytes: number; timing: Record<string, number> }
      expect(doc.ref).toBe(first.ref)
      expect(doc.seq).toBe(2)
      expect(doc.dir).toBe(join(dir, first.ref))
      expect(doc.bytes).toBeGreaterThanOrEqual(NP * APP.size * 1024 * 1024)
      expect(Object.keys(doc.timing)).toEqual(expect.arrayContaining(['running', 'localFinish', 'storeSync', 'establish', 'continue', 'total']))

      // -l while the job runs: every seq, with its CRS and ranks.
      const l = await checkpoint(p, ['-l'])
      const rows = lines(l.stdout).filter((x) => /^\d+\s/.test(x))
      expect(rows.map((x) => Number(x.split(/\s+/)[0]))).toEqual([0, 1, 2])
      for (const row of rows) expect(row).toMatch(/\bself\b.*\b4$/)
      const lj = await checkpoint(p, ['-l', '--json'])
      const listed = JSON.parse(lj.stdout) as { ref: string; seqs: { seq: number; crs: string; ranks: number }[] }
      expect(listed.ref).toBe(first.ref)
      expect(listed.seqs.map((s) => [s.seq, s.crs, s.ranks])).toEqual([[0, 'self', 4], [1, 'self', 4], [2, 'self', 4]])

      await expectRight(p.done(), want)

      // The layout of docs/snapshots.md.
      const g = readGlobal(dir, first.ref)
      expect(g.ref).toBe(first.ref)
      expect(g.seqs.map((s) => s.seq)).toEqual([0, 1, 2])
      expect(g.params.crs).toBe('self')
      expect(g.nodes).toEqual([{ name: 'n1', slots: 2 }, { name: 'n2', slots: 2 }])
      expect(g.apps).toHaveLength(1)
      expect(g.apps[0]!.np).toBe(NP)
      expect(g.apps[0]!.argv).toEqual(appArgv(APP))
      for (const s of g.seqs) {
        expect(s.crs).toBe('self')
        expect(s.options).toEqual([])
        expect(s.ranks.map((m) => [m.rank, m.node])).toEqual([[0, 'n1'], [1, 'n1'], [2, 'n2'], [3, 'n2']])
        for (const m of s.ranks) {
          expect(m.files.map((f) => f.path).sort()).toEqual(['meta.json', 'state.bin'])
          const state = m.files.find((f) => f.path === 'state.bin')!
          expect(state.size).toBe(APP.size * 1024 * 1024)
          expect(state.sum).toMatch(/^crc32:[0-9a-f]{8}$/)
          const rankDir = join(dir, first.ref, String(s.seq), `rank_${m.rank}`)
          expect(statSync(join(rankDir, 'state.bin')).size).toBe(state.size)
          expect(statSync(join(rankDir, 'ompx-rank.json')).isFile()).toBe(true)
        }
      }
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('a snapshot is private: every directory 0700 and every file 0600 (docs/snapshots.md), app-written files included', async () => {
    const dir = snapDir()
    const { ref } = await termAfter(start(dir, appArgv({ iters: 200, size: 1, sleepMs: 20 })), 10)
    const modes: Record<string, string> = {}
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const path = join(d, name)
        const st = statSync(path)
        modes[relative(dir, path)] = (st.mode & 0o777).toString(8)
        if (st.isDirectory()) walk(path)
      }
    }
    walk(dir)
    const want: Record<string, string> = {}
    for (const [path] of Object.entries(modes)) want[path] = statSync(join(dir, path)).isDirectory() ? '700' : '600'
    expect(Object.keys(modes)).toContain(`${ref}/0/rank_0/state.bin`)
    expect(modes).toEqual(want)
  })
})

describe('--term and restart', () => {
  test('--term ends the job with status 0; restart on the same nodes finishes with the uninterrupted checksums', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const { ref, job } = await termAfter(start(dir, appArgv(APP)), 20, true)
    expect(checksums(job.stdout)).toEqual({}) // ended mid-run
    for (let rank = 0; rank < NP; rank++) expect(lastIter(job.stdout, rank)).toBeLessThan(APP.iters)
    expect(readGlobal(dir, ref).seqs.map((s) => [s.seq, s.options])).toEqual([[0, ['term']]])

    const info = await restart(dir, ref, ['-i'])
    expect(info.code).toBe(0)
    expect(info.stdout).toContain(ref)
    expect(info.stdout).toMatch(/nodes:\s+n1:2,n2:2/)
    expect(info.stdout).toMatch(/^\s*\*0\s/m)

    const showme = await restart(dir, ref, ['--showme'])
    expect(showme.code).toBe(0)
    expect(showme.stdout).toMatch(/^ompx run .*-H n1:2,n2:2 .*crs self.*ckpt-app\.ts --iters 200 --mb 4 --sleep-ms 20$/m)
    expect(showme.stdout).toContain('OMPX_RESTART=1')

    const again = await expectRight(restart(dir, ref, ['--display-map']), want)
    expect(again.stdout).toMatch(/Data for node: n1\b/)
    expect(again.stdout).toMatch(/Data for node: n2\b/)
    // It went on from the snapshot (taken at iteration 20 or later), not from the start.
    expectResumedAfter(again.stdout, 20)
  })

  test('restart on a different set of nodes (n3, n4) gives the same checksums', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const { ref } = await termAfter(start(dir, appArgv(APP)), 20)
    const r = await expectRight(restart(dir, ref, ['-H', 'n3:2,n4:2', '--launcher', 'local', '--display-map']), want)
    expect(r.stdout).not.toMatch(/Data for node: n[12]\b/)
    expect(r.stdout).toMatch(/Data for node: n3\b.*Num procs: 2/)
    expect(r.stdout).toMatch(/Data for node: n4\b.*Num procs: 2/)
    expectResumedAfter(r.stdout, 20)
  })

  test('restart --seq N starts from that checkpoint, the default is the latest; ranks learn they were restarted', async () => {
    const want = reference('hold', HOLD)
    const dir = snapDir()
    const p = start(dir, holdArgv(HOLD))
    const { ref, seq } = await termAfter(p, async () => {
      await waitIters(p, NP, 20)
      expect(snapshotRef((await checkpoint(p)).stdout).seq).toBe(0)
      await waitIters(p, NP, 60)
    })
    expect(seq).toBe(1)
    const at = (stdout: string) => {
      const m = new Map<number, { iter: number; dir: string; env: string }>()
      for (const l of lines(stdout)) {
        const x = /^rank (\d+) restarted at (\d+) from (\S+) env (\S+)$/.exec(l)
        if (x) m.set(Number(x[1]), { iter: Number(x[2]), dir: x[3]!, env: x[4]! })
      }
      return m
    }
    const old = await expectRight(restart(dir, ref, ['--seq', '0']), want)
    const latest = await expectRight(restart(dir, ref), want)
    const o = at(old.stdout)
    const l = at(latest.stdout)
    expect([...o.keys()].sort()).toEqual([0, 1, 2, 3])
    expect([...l.keys()].sort()).toEqual([0, 1, 2, 3])
    for (let rank = 0; rank < NP; rank++) {
      expect(o.get(rank)!.env).toBe('1')
      expect(o.get(rank)!.dir).toBe(join(dir, ref, '0', `rank_${rank}`))
      expect(l.get(rank)!.dir).toBe(join(dir, ref, '1', `rank_${rank}`))
      expect(o.get(rank)!.iter).toBeGreaterThanOrEqual(20)
      expect(l.get(rank)!.iter).toBeGreaterThanOrEqual(60)
      expect(o.get(rank)!.iter).toBeLessThan(l.get(rank)!.iter)
    }
  })
})

describe('where a restart runs from', () => {
  test('a job started with a relative program path restarts from another directory, the ref given as a path', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const argv = appArgv(APP).map((a) => (a === CKPT_APP ? 'test/fixtures/ckpt-app.ts' : a))
    const { ref } = await termAfter(start(dir, argv, { cwd: REPO }), 20)
    await expectRight(restart(join(tmp, 'elsewhere'), join(dir, ref), ['-H', 'n3:4', '--launcher', 'local'], { cwd: tmp }), want, true)
  })
})

describe('a restarted job', () => {
  test('is checkpointable in turn: its checkpoint continues the same snapshot (next seq), and a second restart finishes right', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const { ref } = await termAfter(start(dir, appArgv(APP)), 20)
    const q = spawnRestart(dir, ref, ['-H', 'n3:2,n4:2', '--launcher', 'local'])
    const again = await termAfter(q, 60, true)
    expect({ seq: again.seq, ref: again.ref }).toEqual({ seq: 1, ref })
    expect(checksums(again.job.stdout)).toEqual({})
    const g = readGlobal(dir, ref)
    expect(g.seqs.map((s) => s.seq)).toEqual([0, 1])
    expect(g.seqs[1]!.ranks.map((m) => m.node)).toEqual(['n3', 'n3', 'n4', 'n4'])
    const r = await expectRight(restart(dir, ref), want)
    expectResumedAfter(r.stdout, 60)
  })
})

describe('--stop', () => {
  /** `ompx checkpoint --stop` job `p` once every rank is at iteration 20; adds its ranks' pids to `pids`. */
  async function stopAt20(p: OmpxProcess, pids: number[], quiet = false): Promise<string> {
    await waitIters(p, NP, 20)
    const c = await checkpoint(p, ['--stop'], quiet)
    pids.push(...(await rankProcs(p.pid, opts())).map((x) => x.pid))
    return c.stdout
  }

  test('the ranks are stopped (state T) after the checkpoint; kill -CONT of ompx run resumes them and the job finishes right', async () => {
    const want = reference('app', APP)
    const dir = snapDir()
    const p = start(dir, appArgv(APP))
    const pids: number[] = []
    try {
      const { ref } = snapshotRef(await stopAt20(p, pids, true))
      expect(pids).toHaveLength(NP)
      await waitUntil(() => pids.every((pid) => procState(pid) === 'T'), 10_000, 'every rank stopped')
      // ompx run itself is not stopped; it still answers.
      expect(procState(p.pid)).not.toBe('T')
      const l = await checkpoint(p, ['-l', '--json'])
      expect((JSON.parse(l.stdout) as { seqs: { seq: number }[] }).seqs.map((s) => s.seq)).toEqual([0])
      expect(readGlobal(dir, ref).seqs[0]!.options).toEqual(['stop'])
      // Still stopped a moment later: nothing resumed them by itself.
      const before = p.stdout().length
      await Bun.sleep(500)
      expect(pids.every((pid) => procState(pid) === 'T')).toBe(true)
      expect(p.stdout().length).toBe(before)

      kill(p.pid, 'SIGCONT')
      await expectRight(p.done(), want)
    } finally {
      for (const pid of pids) if (isAlive(pid)) kill(pid, 'SIGCONT')
      p.signal('SIGKILL')
    }
  })

  test('--stop, resumed by kill -CONT of the ranks themselves', async () => {
    const want = reference('app', APP)
    const p = start(snapDir(), appArgv(APP))
    const pids: number[] = []
    try {
      await stopAt20(p, pids)
      await waitUntil(() => pids.every((pid) => procState(pid) === 'T'), 10_000, 'every rank stopped')
      for (const pid of pids) kill(pid, 'SIGCONT')
      await expectRight(p.done(), want)
    } finally {
      for (const pid of pids) if (isAlive(pid)) kill(pid, 'SIGCONT')
      p.signal('SIGKILL')
    }
  })
})
