/**
 * Bad input to `ompx migrate`, through the compiled binary against running jobs on simulated
 * nodes (n1:2, n2:2 run ranks 0-3, n3 is a spare): each refusal is one line on stderr with a
 * non-zero exit and no stack trace, and none of them disturbs the job.
 */
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { lines } from '../helpers'
import { appArgv, expectUserError, lastIter, rankProcs, waitIters } from './checkpoint-common'
import { ckptTestEnv } from './checkpoint-jobs'

const { tmp, run, start, opts } = ckptTestEnv('migrate-errors', { timeoutMs: 40_000, testTimeoutMs: 90_000, hosts: 'n1:2,n2:2,n3:2', np: 4 })

/** A pid that is certainly not running (above any pid_max). */
const NO_PID = '2147483600'
/** Long enough to outlive the test; ended with SIGTERM. */
const LONG = appArgv({ iters: 100_000, size: 1, sleepMs: 20 })

describe('ompx migrate: no job to talk to', () => {
  test('no pid, a non-numeric pid, an unknown pid, a pid that is not an HNP, bad lists', async () => {
    expectUserError(await run(['migrate', '-r', '1']), /PID/)
    expectUserError(await run(['migrate', '-r', '1', 'abc']), /"abc" is not a PID/)
    expectUserError(await run(['migrate', '-r', '1', NO_PID]), new RegExp(`${NO_PID}.*not a running ompx HNP|no .*${NO_PID}`))
    expectUserError(await run(['migrate', '-r', '1', String(process.pid)]), new RegExp(`${process.pid}.*not a running ompx HNP`))
    expectUserError(await run(['migrate', NO_PID]), /^ompx migrate: nothing to do: name the ranks to move \(-r\) or the nodes to leave \(-x\)/)
    expectUserError(await run(['migrate', '-r', '2-x', NO_PID]), /--ranks: "2-x" is not a rank or a range/)
    expectUserError(await run(['migrate', '-r', '5-2', NO_PID]), /range "5-2" runs backwards/)
    expectUserError(await run(['migrate', '-x', 'n1,', NO_PID]), /--off: "n1," has an empty node name/)
    expectUserError(await run(['migrate', '--bogus', NO_PID]), /bogus/)
  })
})

describe('ompx migrate: refusals against a running job', () => {
  test('crs none: "cannot migrate", naming the CRS to use; the job runs on', async () => {
    const p = start(join(tmp, 'none'), ['sh', '-c', 'echo "ready $OMPX_RANK"; sleep 3; echo "done $OMPX_RANK"'], { crs: 'none' })
    try {
      for (let r = 0; r < 4; r++) await p.waitFor(new RegExp(`^ready ${r}$`), 20_000)
      const m = await run(['migrate', '-r', '1', String(p.pid)])
      expectUserError(m, /job \S+ cannot migrate: .*--mca crs self/)
      expect(m.stdout).toBe('')
      const r = await p.done()
      expect(r.code).toBe(0)
      expect(lines(r.stdout).filter((l) => l.startsWith('done'))).toHaveLength(4)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('every bad request is one line and leaves the ranks where they are', async () => {
    const p = start(join(tmp, 'self'), LONG)
    try {
      await waitIters(p, 4, 2)
      const before = await rankProcs(p.pid, opts())
      expect(before.map((x) => x.node)).toEqual(['n1', 'n1', 'n2', 'n2'])
      const migrate = (...args: string[]) => run(['migrate', ...args, String(p.pid)])
      const cases: [string[], RegExp][] = [
        [['-r', '4'], /^ompx migrate: rank 4 is out of range: the job has ranks 0-3$/m],
        [['--ranks', '1,7-9'], /rank 7 is out of range: the job has ranks 0-3/],
        [['-x', 'n9'], /^ompx migrate: unknown node n9 in --off: the job's nodes are n1, n2, n3$/m],
        [['-r', '0', '-t', 'n9'], /^ompx migrate: --onto n9 is not a node of the job's allocation \(n1, n2, n3\)$/m],
        [['-r', '0', '-t', 'n2'], /^ompx migrate: cannot move rank 0 onto n2 \(--onto\): it is full, 0 free slots \(2 slots, 2 ranks\)$/m],
        [['-r', '0,1,2', '-t', 'n3'], /cannot move rank 2 onto n3 .*full, 0 free slots/],
        [['-r', '0', '-t', 'n1'], /^ompx migrate: rank 0 already runs on n1 \(--onto n1\)$/m],
        [['-x', 'n3'], /^ompx migrate: nothing to do: no rank runs on n3$/m],
        [['-t', 'n3'], /nothing to do/],
        [['-x', 'n1', '-t', 'n1'], /^ompx migrate: n1 is in both --off and --onto$/m],
        [['-r', '1,1'], /^ompx migrate: rank 1 is listed twice in --ranks$/m],
        [['-r', '0', '-t', 'n3,n3'], /^ompx migrate: n3 is listed twice in --onto$/m],
        [['-r', '1', '--jobid', '99.9'], /no job 99\.9 here/],
      ]
      for (const [args, re] of cases) {
        const m = await migrate(...args)
        expectUserError(m, re)
        expect(m.stdout).toBe('')
      }
      // -v prints the request before asking; the refusal is still one line on stderr.
      const v = await migrate('-v', '-r', '4')
      expectUserError(v, /rank 4 is out of range/)
      expect(v.stdout).toContain('Migrate Ranks: (1 ranks)\n\t"4"')
      const after = await rankProcs(p.pid, opts())
      expect(after.map((x) => [x.rank, x.node, x.pid, x.state])).toEqual(before.map((x) => [x.rank, x.node, x.pid, x.state]))
      // Still iterating: every rank gets past where the furthest one was.
      await waitIters(p, 4, Math.max(...[0, 1, 2, 3].map((r) => lastIter(p.stdout(), r))) + 10)
      p.signal('SIGTERM')
      await p.done()
    } finally {
      p.signal('SIGKILL')
    }
  })
})
