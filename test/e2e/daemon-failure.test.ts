/**
 * Losing a node: a daemon killed with SIGKILL, or frozen with SIGSTOP past heartbeat_timeout,
 * ends the job non-zero with a message naming the node, and nothing of the job survives on
 * any node (ranks, their children, daemons, reapers). Also the HNP itself killed with SIGKILL.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cmdlineOf, currentMark, findMarked, guardLeftovers, isAlive, leftovers, lines, spawnOmpx, type OmpxProcess } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-daemon-failure-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const NODES = 'n1:2,n2:2,n3:2,n4:2'
const NP = 8
/** Each rank says it is ready, then waits on a forked child (so process groups matter). */
const RANK = ['sh', '-c', 'sleep 300 & echo "ready $OMPX_RANK $OMPX_NODE"; wait']

async function startJob(extra: string[] = []): Promise<OmpxProcess> {
  const p = spawnOmpx(['run', '--launcher', 'local', '-H', NODES, ...extra, '-np', String(NP), ...RANK], {
    env: { TMPDIR: tmp },
    timeoutMs: 45_000,
  })
  for (let r = 0; r < NP; r++) await p.waitFor(new RegExp(`^ready ${r} n\\d$`), 20_000)
  return p
}

/** Pid of this test's `ompx orted` for `node`. */
function daemonOf(node: string): number {
  const hits = findMarked(currentMark()).filter((pid) => / orted .*--node (\S+)/.exec(cmdlineOf(pid))?.[1] === node)
  expect(hits).toHaveLength(1)
  return hits[0]!
}

/** Files left in the private session directory (the HNP survived, so it must have cleaned up). */
const sessionFiles = () => readdirSync(tmp).filter((n) => n.startsWith('ompx-')).flatMap((d) => readdirSync(join(tmp, d)))

const marked = () => findMarked(currentMark()).map((pid) => `${pid} ${cmdlineOf(pid)}`)
const sleepers = () => marked().filter((d) => / sleep 300$/.test(d))

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {}
}

describe('a lost daemon ends the job cleanly', () => {
  test('kill -9 of the daemon of n2: non-zero exit naming n2, nothing left on any node', async () => {
    const p = await startJob()
    try {
      expect(sleepers()).toHaveLength(NP)
      const victim = daemonOf('n2')
      kill(victim, 'SIGKILL')
      const r = await p.done()
      expect(r.code).not.toBe(0)
      expect(r.code).not.toBeNull()
      const msg = lines(r.stderr).filter((l) => /\bn2\b/.test(l))
      expect(msg.length).toBeGreaterThanOrEqual(1)
      expect(msg[0]).toMatch(/node n2 lost/)
      expect(r.stderr).not.toMatch(/^\s+at\s/m)
      // Ranks of every node (including n2's, whose daemon could not kill them), their children,
      // every other daemon: all gone.
      expect((await leftovers(currentMark(), 5000)).map((pid) => `${pid} ${cmdlineOf(pid)}`)).toEqual([])
      expect(sessionFiles()).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('SIGSTOP of the daemon of n3 with heartbeat_timeout 2: declared lost, nothing left', async () => {
    const p = await startJob(['--mca', 'heartbeat_timeout', '2'])
    let victim = 0
    try {
      victim = daemonOf('n3')
      kill(victim, 'SIGSTOP')
      const t0 = performance.now()
      const r = await p.done()
      expect(performance.now() - t0).toBeLessThan(20_000)
      expect(r.code).not.toBe(0)
      expect(r.code).not.toBeNull()
      const msg = lines(r.stderr).filter((l) => /\bn3\b/.test(l))
      expect(msg.length).toBeGreaterThanOrEqual(1)
      expect(msg[0]).toMatch(/node n3 lost/)
      expect(msg[0]).toMatch(/answer|heartbeat|respond/)
      // The frozen daemon cannot clean up after itself: its ranks must be gone anyway, and the
      // daemon itself must not stay behind stopped.
      expect((await leftovers(currentMark(), 5000)).map((pid) => `${pid} ${cmdlineOf(pid)}`)).toEqual([])
      expect(isAlive(victim)).toBe(false)
      expect(sessionFiles()).toEqual([])
    } finally {
      if (victim) kill(victim, 'SIGCONT'), kill(victim, 'SIGKILL')
      p.signal('SIGKILL')
    }
  })

  test('a daemon that stops only briefly (under heartbeat_timeout) is not declared lost', async () => {
    const p = spawnOmpx(
      ['run', '--launcher', 'local', '-H', 'n1:1,n2:1', '--mca', 'heartbeat_timeout', '5', '-np', '2',
        'sh', '-c', 'echo "ready $OMPX_RANK"; sleep 3; echo "done $OMPX_RANK"'],
      { env: { TMPDIR: tmp }, timeoutMs: 30_000 },
    )
    let victim = 0
    try {
      for (const r of [0, 1]) await p.waitFor(new RegExp(`^ready ${r}$`), 20_000)
      victim = daemonOf('n2')
      kill(victim, 'SIGSTOP')
      await Bun.sleep(1500)
      kill(victim, 'SIGCONT')
      const r = await p.done()
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(lines(r.stdout).sort()).toEqual(['done 0', 'done 1', 'ready 0', 'ready 1'])
    } finally {
      if (victim) kill(victim, 'SIGCONT')
      p.signal('SIGKILL')
    }
  })
})

describe('a lost HNP', () => {
  test('kill -9 of ompx run: every daemon and rank on every node goes away', async () => {
    const p = await startJob()
    try {
      expect(marked().filter((d) => / orted /.test(d))).toHaveLength(4)
      p.signal('SIGKILL')
      await p.done()
      expect((await leftovers(currentMark(), 8000)).map((pid) => `${pid} ${cmdlineOf(pid)}`)).toEqual([])
    } finally {
      p.signal('SIGKILL')
      // A SIGKILLed HNP cannot remove its contact file and job dirs; don't leave them to later tests.
      for (const d of readdirSync(tmp)) rmSync(join(tmp, d), { recursive: true, force: true })
    }
  })
})
