/**
 * The persistent HNP: `ompx hnp --hostfile F --daemonize`, jobs submitted with `ompx run --hnp`
 * (two at once, each with its own output and exit status), `ompx ps` showing both, and
 * `ompx hnp --stop` taking everything down; snapc_checkpoint_on_signal on the HNP (a batch time
 * limit's warning checkpoints the submitted jobs). Plus bad references to an HNP.
 */
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  cmdlineOf, currentMark, findMarked, FIXTURES, guardLeftovers, isAlive, leftovers, lines, ompx, simHostfile, spawnOmpx,
  userErrorProblems, waitUntil, type OmpxProcess,
} from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-hnp-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const env = { TMPDIR: tmp }
const tool = (args: string[], timeoutMs = 20_000) => ompx(args, { env, timeoutMs })
const sessionDir = () => join(tmp, readdirSync(tmp).find((n) => n.startsWith('ompx-'))!)
const HOSTFILE = simHostfile(join(tmp, 'hosts'), [['n1', 2], ['n2', 2], ['n3', 2]])

let hnpPid = 0
afterEach(async () => {
  // Whatever happened, the HNP must not outlive its test (the leftover guard checks the rest).
  if (hnpPid && isAlive(hnpPid)) await tool(['hnp', '--stop', String(hnpPid)]).catch(() => {})
  hnpPid = 0
})

async function startHnp(extra: string[] = []): Promise<number> {
  const r = await tool(['hnp', '--hostfile', HOSTFILE, ...extra, '--daemonize'], 30_000)
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  const m = lines(r.stdout)[0]?.match(/^ompx hnp: pid (\d+) uri (tcp:\/\/\S+) nodes (\S+)/)
  expect(m).not.toBeNull()
  hnpPid = Number(m![1])
  expect(m![3]!.split(',').sort()).toEqual(['n1', 'n2', 'n3'])
  expect(isAlive(hnpPid)).toBe(true)
  return hnpPid
}

describe('persistent HNP', () => {
  test('two jobs at once: own output and exit codes, both in ps, then --stop leaves nothing', async () => {
    const pid = await startHnp()
    const contact = join(sessionDir(), `hnp-${pid}.json`)
    expect(existsSync(contact)).toBe(true)
    // Three daemons, one per node, all under the HNP.
    expect(findMarked(currentMark()).filter((p) => / orted /.test(cmdlineOf(p)))).toHaveLength(3)
    const gate = join(tmp, `gate-${currentMark()}`)
    const wait = `while [ ! -e ${gate} ]; do sleep 0.05; done`
    let a: OmpxProcess | undefined
    let b: OmpxProcess | undefined
    try {
      const submit = (np: number, script: string) =>
        spawnOmpx(['run', '--hnp', String(pid), '-np', String(np), 'sh', '-c', script], { env, timeoutMs: 40_000 })
      a = submit(2, `echo "A $OMPX_RANK up"; ${wait}; echo "A $OMPX_RANK done"`)
      b = submit(3, `echo "B $OMPX_RANK up"; echo "B $OMPX_RANK err" >&2; ${wait}; exit 3`)
      for (const r of [0, 1]) await a.waitFor(new RegExp(`^A ${r} up$`), 20_000)
      for (const r of [0, 1, 2]) await b.waitFor(new RegExp(`^B ${r} up$`), 20_000)

      const ps = await tool(['ps', '--json', String(pid)])
      expect(ps.code).toBe(0)
      const reply = JSON.parse(ps.stdout)
      expect(reply.hnp.pid).toBe(pid)
      const jobs = reply.jobs as { jobid: string; state: string; app: string; procs: { rank: number; pid: number; state: string }[] }[]
      expect(jobs).toHaveLength(2)
      const sizes = jobs.map((j) => [j.app.includes('"A ') ? 'A' : 'B', j.procs.length, j.state]).sort()
      expect(sizes).toEqual([['A', 2, 'running'], ['B', 3, 'running']])
      for (const j of jobs) {
        expect(j.jobid).toMatch(new RegExp(`^${pid}\\.\\d+$`))
        for (const q of j.procs) expect([q.state, isAlive(q.pid)]).toEqual(['running', true])
      }
      const text = await tool(['ps', String(pid)])
      expect(text.code).toBe(0)
      for (const j of jobs) expect(text.stdout).toContain(`Job ${j.jobid}`)

      writeFileSync(gate, '')
      const [ra, rb] = await Promise.all([a.done(), b.done()])
      expect(ra.stderr).toBe('')
      expect(ra.code).toBe(0)
      expect(lines(ra.stdout).sort()).toEqual(['A 0 done', 'A 0 up', 'A 1 done', 'A 1 up'])
      expect(rb.code).toBe(3)
      expect(lines(rb.stdout).sort()).toEqual(['B 0 up', 'B 1 up', 'B 2 up'])
      expect(lines(rb.stderr).filter((l) => /^B \d err$/.test(l)).sort()).toEqual(['B 0 err', 'B 1 err', 'B 2 err'])
      expect(rb.stderr).toMatch(/status 3/)

      // The HNP outlives its jobs: a later ps shows no jobs, still three nodes.
      const after = JSON.parse((await tool(['ps', '--json', String(pid)])).stdout)
      expect(after.jobs).toEqual([])
      expect([...after.hnp.nodes].sort()).toEqual(['n1', 'n2', 'n3'])

      const st = await tool(['hnp', '--stop', String(pid)])
      expect(st.code).toBe(0)
      expect(st.stdout).toContain(`stopped HNP ${pid}`)
      await waitUntil(() => !isAlive(pid), 10_000, `HNP ${pid} to exit`)
      expect((await leftovers(currentMark(), 5000)).map((p) => `${p} ${cmdlineOf(p)}`)).toEqual([])
      expect(existsSync(contact)).toBe(false)
      expect(readdirSync(sessionDir()).filter((n) => n.includes(`-${pid}`))).toEqual([])
      // The HNP is gone in well under a second; the stop command must not linger after it.
      expect(st.ms).toBeLessThan(8000)
    } finally {
      writeFileSync(gate, '')
      for (const p of [a, b]) p?.signal('SIGKILL')
    }
  })

  test('a submitting ompx run killed with SIGTERM ends its job; the HNP serves the next one', async () => {
    const pid = await startHnp()
    const p = spawnOmpx(['run', '--hnp', String(pid), '-np', '3', 'sh', '-c', 'echo "up $OMPX_RANK"; exec sleep 300'], { env, timeoutMs: 30_000 })
    for (const r of [0, 1, 2]) await p.waitFor(new RegExp(`^up ${r}$`), 20_000)
    p.signal('SIGTERM')
    const r = await p.done()
    expect(r.code).not.toBe(0)
    await waitUntil(() => !findMarked(currentMark()).some((q) => cmdlineOf(q) === 'sleep 300'), 10_000, 'the ranks to go')
    const next = await tool(['run', '--hnp', String(pid), '-np', '2', 'sh', '-c', 'echo "next $OMPX_RANK $OMPX_NODE"'])
    expect(next.code).toBe(0)
    expect(lines(next.stdout).sort()).toEqual(['next 0 n1', 'next 1 n1'])
    expect((await tool(['hnp', '--stop', String(pid)])).code).toBe(0)
  })

  test('kill -9 of the HNP: submitters fail with a message, nothing left, the stale contact file is ignored', async () => {
    const pid = await startHnp()
    const p = spawnOmpx(['run', '--hnp', String(pid), '-np', '4', 'sh', '-c', 'echo "up $OMPX_RANK"; exec sleep 300'], { env, timeoutMs: 30_000 })
    try {
      for (const r of [0, 1, 2, 3]) await p.waitFor(new RegExp(`^up ${r}$`), 20_000)
      process.kill(pid, 'SIGKILL')
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.code).not.toBeNull()
      expect(lines(r.stderr).filter((l) => /HNP/.test(l))).toHaveLength(1)
      // Daemons see their stdin close, kill their ranks and exit.
      expect((await leftovers(currentMark(), 8000)).map((q) => `${q} ${cmdlineOf(q)}`)).toEqual([])
      const ps = await tool(['ps'])
      expect(userErrorProblems(ps)).toEqual([])
      expect(ps.stderr).toMatch(/no running ompx HNP/)
      expect(existsSync(join(sessionDir(), `hnp-${pid}.json`))).toBe(false)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('checkpoint on a signal (snapc_checkpoint_on_signal)', () => {
  test('SIGUSR1 to ompx hnp checkpoints a submitted job, which ends with 75; the snapshot restarts to the right checksums', async () => {
    const snaps = join(tmp, 'signal-snaps')
    const cr = ['--mca', 'crs', 'self', '--mca', 'sstore_base_global_snapshot_dir', snaps]
    const pid = await startHnp([...cr, '--mca', 'snapc_checkpoint_on_signal', 'USR1'])
    const app = [process.execPath, join(FIXTURES, 'ckpt-app.ts'), '--iters', '400', '--mb', '1', '--sleep-ms', '20']
    const p = spawnOmpx(['run', '--hnp', String(pid), '-np', '2', '--', ...app], { env, timeoutMs: 60_000 })
    try {
      for (const r of [0, 1]) await p.waitFor(new RegExp(`^rank ${r} iter 20$`), 30_000)
      process.kill(pid, 'SIGUSR1')
      const r = await p.done()
      expect(r.code).toBe(75)
      expect(r.stdout).not.toMatch(/checksum/)
      const refs = readdirSync(snaps).filter((n) => n.endsWith('.ckpt'))
      expect(refs).toHaveLength(1)
      const again = await tool(['restart', '--launcher', 'local', '-H', 'n1:2', ...cr, join(snaps, refs[0]!)], 60_000)
      expect(again.code).toBe(0)
      const reference = await tool(['run', '--launcher', 'local', '-H', 'n1:2', '-np', '2', '--', ...app], 60_000)
      const sums = (out: string) => lines(out).filter((l) => /^rank \d checksum /.test(l)).sort()
      expect(sums(reference.stdout)).toHaveLength(2)
      expect(sums(again.stdout)).toEqual(sums(reference.stdout))
      expect((await tool(['hnp', '--stop', String(pid)])).code).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('bad HNP references', () => {
  test('ompx run --hnp 999999: one-line error', async () => {
    const r = await tool(['run', '--hnp', '999999', '-np', '1', 'true'])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toContain('999999')
  })

  test('ompx hnp --stop of a pid that is not an HNP: one-line error, that process untouched', async () => {
    const victim = Bun.spawn(['sleep', '30'])
    try {
      const r = await tool(['hnp', '--stop', String(victim.pid)])
      expect(userErrorProblems(r)).toEqual([])
      expect(r.stderr).toContain(String(victim.pid))
      expect(isAlive(victim.pid)).toBe(true)
      const gone = await tool(['hnp', '--stop', '999999'])
      expect(userErrorProblems(gone)).toEqual([])
    } finally {
      victim.kill('SIGKILL')
    }
  })
})
