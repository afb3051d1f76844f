/**
 * Signals sent to `ompx run`: SIGINT/SIGTERM terminate the job through the ranks (SIGTERM, then
 * SIGKILL after a grace period, at once on a second SIGINT); SIGUSR1/SIGUSR2/SIGCONT are forwarded;
 * SIGTSTP stops the ranks. Ranks run test/fixtures/trap.sh, which reports every signal it gets.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FIXTURES, findMarked, currentMark, guardLeftovers, lines, spawnOmpx, type OmpxProcess } from '../helpers'

guardLeftovers()
// Per test; ompx calls have their own hard timeouts (helpers.ts). bunfig has no test timeout key.
setDefaultTimeout(60_000)
const TRAP = join(FIXTURES, 'trap.sh')
const NP = 3

/** Start a job of trap.sh ranks and wait until all of them said "ready". */
async function startJob(extraEnv: Record<string, string> = {}, opts: string[] = []): Promise<OmpxProcess> {
  const p = spawnOmpx(['run', ...opts, '--oversubscribe', '-np', String(NP), TRAP], { env: extraEnv, timeoutMs: 40_000 })
  for (let r = 0; r < NP; r++) await p.waitFor(new RegExp(`^ready ${r}$`), 15_000)
  return p
}

async function waitAll(p: OmpxProcess, word: string): Promise<void> {
  for (let r = 0; r < NP; r++) await p.waitFor(new RegExp(`^${word} ${r}$`), 10_000)
}

/** Pids of this test's rank shells (trap.sh, not their just-forked children), whatever their state. */
function rankPids(): number[] {
  const marked = findMarked(currentMark())
  const isTrap = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1]?.endsWith('trap.sh') ?? false
    } catch {
      return false
    }
  }
  return marked.filter((pid) => isTrap(pid) && !isTrap(ppid(pid)))
}

function ppid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return 0
  }
}

function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2)[0]!
}

describe.each([['SIGINT'], ['SIGTERM']] as const)('%s to ompx', (sig) => {
  test('ranks get SIGTERM, ompx exits after them', async () => {
    const p = await startJob()
    p.signal(sig)
    const r = await p.done()
    expect(lines(r.stdout).filter((l) => l.startsWith('term ')).sort()).toEqual(['term 0', 'term 1', 'term 2'])
    expect(r.code).not.toBe(0)
  })
})

test('a second SIGINT forces the job down (ranks ignoring SIGTERM)', async () => {
  // A grace period far beyond the call's 40 s hard timeout: only the second SIGINT can end the job.
  const p = await startJob({ TRAP_IGNORE_TERM: '1' }, ['--mca', 'kill_grace', '600'])
  p.signal('SIGINT')
  await waitAll(p, 'term')
  // The ranks ignored SIGTERM; ompx is now in its grace period.
  await Bun.sleep(300)
  expect(rankPids()).toHaveLength(NP)
  const t0 = performance.now()
  p.signal('SIGINT')
  const r = await p.done()
  expect(r.code).not.toBe(0)
  expect(r.stderr).not.toMatch(/unknown MCA parameter/)
  expect(rankPids()).toEqual([])
  console.log(`second SIGINT -> exit in ${Math.round(performance.now() - t0)} ms`)
})

test('ranks ignoring SIGTERM are killed after the grace period (single SIGINT)', async () => {
  const p = await startJob({ TRAP_IGNORE_TERM: '1' }, ['--mca', 'kill_grace', '1'])
  const t0 = performance.now()
  p.signal('SIGINT')
  const r = await p.done()
  expect(r.code).not.toBe(0)
  expect(lines(r.stdout).filter((l) => l.startsWith('term ')).sort()).toEqual(['term 0', 'term 1', 'term 2'])
  console.log(`single SIGINT with TERM-ignoring ranks -> exit in ${Math.round(performance.now() - t0)} ms`)
})

describe.each([
  ['SIGUSR1', 'usr1'],
  ['SIGUSR2', 'usr2'],
] as const)('%s is forwarded', (sig, word) => {
  test('every rank reports it, the job keeps running', async () => {
    const p = await startJob()
    p.signal(sig)
    await waitAll(p, word)
    expect(rankPids()).toHaveLength(NP)
    p.signal('SIGTERM')
    await p.done()
  })
})

test('SIGTSTP stops the ranks, SIGCONT resumes them (and is forwarded)', async () => {
  const p = await startJob()
  const pids = rankPids()
  expect(pids).toHaveLength(NP)
  p.signal('SIGTSTP')
  const deadline = performance.now() + 10_000
  while (pids.some((pid) => procState(pid) !== 'T') && performance.now() < deadline) await Bun.sleep(50)
  expect(pids.map(procState)).toEqual(new Array(NP).fill('T'))
  p.signal('SIGCONT')
  await waitAll(p, 'cont')
  expect(pids.map(procState).filter((s) => s === 'T')).toEqual([])
  p.signal('SIGTERM')
  const r = await p.done()
  expect(r.code).not.toBe(0)
})
