/**
 * Tools against running jobs: `ompx ps` (text and --json) on a multi-node job, choosing among
 * two HNPs, bad pids, and the contact file (0600 in a 0700 dir, holds uri/pid/secret, removed at
 * exit, the secret never in any argv).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { currentMark, findMarked, guardLeftovers, lines, MARK_VAR, ompx, spawnOmpx, userErrorProblems, waitUntil, type OmpxProcess } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-tools-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const env = { TMPDIR: tmp }
const tool = (args: string[]) => ompx(args, { env, timeoutMs: 15_000 })
const sessionDir = () => join(tmp, readdirSync(tmp).find((n) => n.startsWith('ompx-'))!)

/** A 3-node job of 6 ranks that wait until killed; resolves once every rank said ready. */
async function startJob(tag: string): Promise<OmpxProcess> {
  const p = spawnOmpx(
    ['run', '--launcher', 'local', '-H', 'n1:2,n2:2,n3:2', '-np', '6', 'sh', '-c', `echo "ready ${tag} $OMPX_RANK"; exec sleep 300`],
    { env, timeoutMs: 45_000 },
  )
  for (let r = 0; r < 6; r++) await p.waitFor(new RegExp(`^ready ${tag} ${r}$`), 20_000)
  return p
}

async function stop(...jobs: (OmpxProcess | undefined)[]): Promise<void> {
  for (const p of jobs) p?.signal('SIGTERM')
  for (const p of jobs) await p?.done().catch(() => {})
}

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')
const slotNode = (rank: number) => `n${Math.floor(rank / 2) + 1}`

describe('ompx ps on a running multi-node job', () => {
  test('text and --json: every rank with its node, a real pid of that rank, state running', async () => {
    const p = await startJob('a')
    try {
      const text = await tool(['ps', String(p.pid)])
      expect(text.stderr).toBe('')
      expect(text.code).toBe(0)
      const out = lines(text.stdout)
      expect(out[0]).toMatch(new RegExp(`^HNP ${p.pid} at tcp://\\S+, up .*, nodes: `))
      for (const n of ['n1', 'n2', 'n3']) expect(out[0]).toContain(n)
      expect(out.some((l) => new RegExp(`^Job ${p.pid}\\.1\\s+running\\b`).test(l))).toBe(true)
      const rows = out.filter((l) => /^\s+\d+\s+n\d\s/.test(l)).map((l) => l.trim().split(/\s+/))
      expect(rows.map((r) => [Number(r[0]), r[1], r[3]])).toEqual([...Array(6).keys()].map((r) => [r, slotNode(r), 'running']))

      const js = await tool(['ps', '--json', String(p.pid)])
      expect(js.code).toBe(0)
      const reply = JSON.parse(js.stdout)
      expect(reply.hnp.pid).toBe(p.pid)
      expect([...reply.hnp.nodes].sort()).toEqual(['n1', 'n2', 'n3'])
      expect(reply.jobs).toHaveLength(1)
      const procs = reply.jobs[0].procs as { rank: number; node: string; pid: number; state: string }[]
      expect(procs.map((q) => [q.rank, q.node, q.state])).toEqual([...Array(6).keys()].map((r) => [r, slotNode(r), 'running']))
      // Text and JSON agree on pids; each pid is the rank itself (its environment says so).
      expect(rows.map((r) => Number(r[2]))).toEqual(procs.map((q) => q.pid))
      for (const q of procs) {
        const e = environ(q.pid)
        expect(e).toContain(`${MARK_VAR}=${currentMark()}`)
        expect(e).toContain(`OMPX_RANK=${q.rank}`)
        expect(e).toContain(`OMPX_NODE=${q.node}`)
      }
    } finally {
      await stop(p)
    }
  })

  test('a rank that already finished shows as exited, the others as running', async () => {
    const p = spawnOmpx(
      ['run', '--launcher', 'local', '-H', 'n1:1,n2:1,n3:1', '-np', '3', 'sh', '-c', 'echo "up $OMPX_RANK"; [ "$OMPX_RANK" = 1 ] && exit 0; exec sleep 300'],
      { env, timeoutMs: 45_000 },
    )
    try {
      for (let r = 0; r < 3; r++) await p.waitFor(new RegExp(`^up ${r}$`), 20_000)
      let states: string[] = []
      for (let i = 0; i < 50 && states[1] !== 'exited'; i++) {
        const js = await tool(['ps', '--json', String(p.pid)])
        expect(js.code).toBe(0)
        states = JSON.parse(js.stdout).jobs[0].procs.map((q: { state: string }) => q.state)
        if (states[1] !== 'exited') await Bun.sleep(100)
      }
      expect(states).toEqual(['running', 'exited', 'running'])
    } finally {
      await stop(p)
    }
  })
})

describe('several HNPs', () => {
  test('ps without pid lists both and fails; ps <pid> picks the right one; a bogus pid is one line', async () => {
    let a: OmpxProcess | undefined
    let b: OmpxProcess | undefined
    try {
      a = await startJob('a')
      b = await startJob('b')
      const both = await tool(['ps'])
      expect(userErrorProblems(both)).toEqual([])
      expect(both.stderr).toMatch(/several HNPs/)
      expect(both.stderr).toContain(String(a.pid))
      expect(both.stderr).toContain(String(b.pid))
      for (const p of [a, b]) {
        const r = await tool(['ps', '--json', String(p.pid)])
        expect(r.code).toBe(0)
        const reply = JSON.parse(r.stdout)
        expect(reply.hnp.pid).toBe(p.pid)
        expect(reply.jobs.map((j: { jobid: string }) => j.jobid)).toEqual([`${p.pid}.1`])
        const tagOf = (pid: number) => environ(pid).find((l) => l.startsWith('OMPX_JOBID='))
        for (const q of reply.jobs[0].procs) expect(tagOf(q.pid)).toBe(`OMPX_JOBID=${p.pid}.1`)
      }
      const bogus = await tool(['ps', '999999'])
      expect(userErrorProblems(bogus)).toEqual([])
      expect(bogus.stderr).toContain('999999')
    } finally {
      await stop(a, b)
    }
  })

  test('ps with no HNP running: one-line error', async () => {
    const r = await tool(['ps'])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(/no running ompx HNP/)
  })
})

describe('contact file', () => {
  test('0600 in a 0700 dir while running, holds uri/pid/secret, the secret in no argv, gone after exit', async () => {
    const p = await startJob('c')
    let path = ''
    try {
      const dir = sessionDir()
      path = join(dir, `hnp-${p.pid}.json`)
      expect(existsSync(path)).toBe(true)
      expect(statSync(dir).mode & 0o777).toBe(0o700)
      expect(statSync(path).mode & 0o777).toBe(0o600)
      const c = JSON.parse(readFileSync(path, 'utf8'))
      expect(c.pid).toBe(p.pid)
      expect(c.uri).toMatch(/^tcp:\/\/127\.\d+\.\d+\.\d+:\d+$/)
      expect(c.secret).toMatch(/^[0-9a-f]{64}$/)
      expect(c.jobs).toEqual([`${p.pid}.1`])
      // Nobody's argv holds the secret (daemons get it on stdin), nor does any job process's environment.
      const inArgv: string[] = []
      for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue
        try {
          if (readFileSync(`/proc/${d}/cmdline`, 'latin1').includes(c.secret)) inArgv.push(d)
        } catch {}
      }
      expect(inArgv).toEqual([])
      const marked = findMarked(currentMark())
      expect(marked.length).toBeGreaterThanOrEqual(6 + 3)
      expect(marked.filter((pid) => readFileSync(`/proc/${pid}/environ`, 'latin1').includes(c.secret))).toEqual([])
    } finally {
      await stop(p)
    }
    expect(existsSync(path)).toBe(false)
    // Nothing of the job is left in the (private) session directory: no contact file, job or node
    // dirs, reaper files. A reaper sidecar removes its file once it saw its parent go, a moment
    // after the exit: give it that moment (seen once in a full suite: reap-<pid>.pgids still there).
    await waitUntil(() => readdirSync(sessionDir()).length === 0, 3000, 'the session directory to empty').catch(() => {})
    expect(readdirSync(sessionDir())).toEqual([])
  })
})
