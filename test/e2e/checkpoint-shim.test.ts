/**
 * Programs that cannot link the SDK, checkpointed through `ompx shim` (docs/shim.md): a plain
 * shell script (ckpt-loop.sh) and a C program (ckpt-counter.c). A checkpoint mid-run lets them go
 * on to the right sum; --term ends them and a restart (also on other nodes) continues from
 * their saved count; --stop stops the program too; a program that never answers fails the
 * checkpoint with the shim's message and goes on.
 */
import { $ } from 'bun'
import { beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { cmdlineOf, currentMark, findMarked, isAlive, lines, OMPX, waitUntil, type OmpxProcess, type RunOpts } from '../helpers'
import { CKPT_COUNTER_C, CKPT_LOOP, expectUserError, kill, procState, readGlobal, snapshotRef } from './checkpoint-common'
import { ckptTestEnv } from './checkpoint-jobs'

const { tmp, run, snapDir, start, checkpoint, termAfter, restart } = ckptTestEnv('shim', { timeoutMs: 60_000, testTimeoutMs: 90_000, hosts: 'n1:1,n2:1', np: 2 })
const COUNTER = join(tmp, 'ckpt-counter')
beforeAll(async () => {
  await $`cc -O2 -o ${COUNTER} ${CKPT_COUNTER_C}`
})

const N = 40
const SUM = (N * (N + 1)) / 2

const PROGRAMS: [string, () => string[]][] = [
  ['shell script', () => ['sh', CKPT_LOOP, String(N)]],
  ['C program', () => [COUNTER, String(N)]],
]

const startJob = (dir: string, prog: string[], shimArgs: string[] = [], o: RunOpts = {}) => start(dir, [OMPX, 'shim', ...shimArgs, '--', ...prog], o)

/** rank -> the sum printed in `rank R done SUM`. */
function doneSums(stdout: string): Record<number, number> {
  const out: Record<number, number> = {}
  for (const l of lines(stdout)) {
    const m = /^rank (\d+) done (\d+)$/.exec(l)
    if (m) out[Number(m[1])] = Number(m[2])
  }
  return out
}

/** rank -> the count a restarted program says it continues from. */
function restartedAt(stdout: string): Record<number, number> {
  const out: Record<number, number> = {}
  for (const l of lines(stdout)) {
    const m = /^rank (\d+) restarted at (\d+)$/.exec(l)
    if (m) out[Number(m[1])] = Number(m[2])
  }
  return out
}

const bothCounted = async (p: OmpxProcess, i: number) => {
  await p.waitFor(new RegExp(`^rank 0 count ${i}$`), 20_000)
  await p.waitFor(new RegExp(`^rank 1 count ${i}$`), 20_000)
}

for (const [what, prog] of PROGRAMS) {
  describe(`a ${what} through ompx shim`, () => {
    test('checkpoints mid-run: the program goes on to the right sum; the snapshot holds its state file (not "done")', async () => {
      const dir = snapDir()
      const p = startJob(dir, prog())
      try {
        await bothCounted(p, 5)
        const { ref, seq } = snapshotRef((await checkpoint(p, [], true)).stdout)
        expect(seq).toBe(0)
        await bothCounted(p, 10)
        expect(snapshotRef((await checkpoint(p)).stdout).seq).toBe(1)
        const r = await p.done()
        expect(r.code).toBe(0)
        expect(doneSums(r.stdout)).toEqual({ 0: SUM, 1: SUM })
        const g = readGlobal(dir, ref)
        expect(g.seqs.map((s) => s.seq)).toEqual([0, 1])
        for (const s of g.seqs) {
          for (const m of s.ranks) {
            expect(m.files.map((f) => f.path)).toEqual(['state'])
            // "I SUM" of the moment it was taken: a count between 1 and N.
            const [i, sum] = readFileSync(join(dir, ref, String(s.seq), `rank_${m.rank}`, 'state'), 'utf8').trim().split(' ').map(Number)
            expect(i).toBeGreaterThanOrEqual(5)
            expect(i).toBeLessThan(N)
            expect(sum).toBe((i! * (i! + 1)) / 2)
          }
        }
      } finally {
        p.signal('SIGKILL')
      }
    })

    test('--term, then restart on other nodes: it continues from its saved count and ends with the right sum', async () => {
      const dir = snapDir()
      const p = startJob(dir, prog())
      const { ref, job } = await termAfter(p, () => bothCounted(p, 10), true)
      expect(doneSums(job.stdout)).toEqual({})
      const saved = readGlobal(dir, ref).seqs[0]!.ranks.map((m) => Number(readFileSync(join(dir, ref, '0', `rank_${m.rank}`, 'state'), 'utf8').split(' ')[0]))
      const r = await restart(dir, ref, ['-H', 'n3:1,n4:1', '--launcher', 'local', '--display-map'])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/Data for node: n3\b/)
      expect(r.stdout).toMatch(/Data for node: n4\b/)
      expect(restartedAt(r.stdout)).toEqual({ 0: saved[0]!, 1: saved[1]! })
      for (const i of saved) expect(i).toBeGreaterThanOrEqual(10)
      expect(doneSums(r.stdout)).toEqual({ 0: SUM, 1: SUM })
      // It did not count from 1 again.
      expect(r.stdout).not.toMatch(/^rank \d count 1$/m)
    })
  })
}

describe('ompx shim: --stop and failures', () => {
  test('--stop stops the program as well as the shim; kill -CONT of ompx run resumes them', async () => {
    const dir = snapDir()
    const p = startJob(dir, [COUNTER, String(N)])
    let procs: number[] = []
    try {
      await bothCounted(p, 5)
      await checkpoint(p, ['--stop'])
      // The shims and the programs they run (every process of the job except ompx run and the daemons).
      const shims = findMarked(currentMark()).filter((pid) => cmdlineOf(pid).startsWith(`${OMPX} shim `))
      const programs = findMarked(currentMark()).filter((pid) => cmdlineOf(pid).startsWith(`${COUNTER} `))
      expect(shims).toHaveLength(2)
      expect(programs).toHaveLength(2)
      procs = [...shims, ...programs]
      await waitUntil(() => procs.every((pid) => procState(pid) === 'T'), 10_000, 'shims and programs stopped')
      kill(p.pid, 'SIGCONT')
      const r = await p.done()
      expect(r.code).toBe(0)
      expect(doneSums(r.stdout)).toEqual({ 0: SUM, 1: SUM })
    } finally {
      for (const pid of procs) if (isAlive(pid)) kill(pid, 'SIGCONT')
      p.signal('SIGKILL')
    }
  })

  test('a program that traps the signal but never answers: the checkpoint fails with the shim\'s message, nothing is listed, the job goes on', async () => {
    const dir = snapDir()
    const p = startJob(dir, ['sh', CKPT_LOOP, '30'], ['--timeout', '1'], { env: { CKPT_LOOP_IGNORE: '1' } })
    try {
      await bothCounted(p, 3)
      const c = await run(['checkpoint', String(p.pid)])
      expectUserError(c, /did not create .*done within 1 s/)
      expect(c.stderr).toMatch(/no snapshot was taken/)
      const l = await checkpoint(p, ['-l', '--json'])
      expect((JSON.parse(l.stdout) as { seqs: unknown[] }).seqs).toEqual([])
      const r = await p.done()
      expect(r.code).toBe(0)
      expect(doneSums(r.stdout)).toEqual({ 0: 465, 1: 465 })
      // Nothing of the failed attempt is left in the global directory: at most an empty ref with
      // an empty seq dir (kept so the number is never reused).
      for (const ref of readdirSync(dir)) {
        for (const seq of readdirSync(join(dir, ref)).filter((x) => /^\d+$/.test(x))) expect(readdirSync(join(dir, ref, seq))).toEqual([])
      }
    } finally {
      p.signal('SIGKILL')
    }
  })
})
