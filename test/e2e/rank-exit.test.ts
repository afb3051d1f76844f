/**
 * A rank's exit is noticed from its process, not from EOF on its pipes (src/orted/rank-end.ts):
 * a background child that inherited stdout does not delay the job's reaction to the exit, and is
 * killed with what else the rank left behind; a SIGKILLed `ompx shim` is noticed at once and its
 * program dies with it; output written before the exit still arrives, before the exit's effects.
 * Run on the in-process node (`ompx run`'s own) and on simulated nodes (an `ompx orted` each).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { currentMark, findMarked, guardLeftovers, isAlive, leftovers, lines, OMPX, ompx, simHostfile, spawnOmpx } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-rank-exit-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Well under the 12 s / 30 s the old EOF-based detection took, and far from any tight timing. */
const PROMPT_MS = 8000

const NODES: [string, () => string[]][] = [
  ['the in-process node', () => []],
  ['simulated nodes', () => ['--hostfile', simHostfile(join(tmp, 'hf'), [['n1', 1], ['n2', 1]])]],
]

const argv = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    return []
  }
}

function ppid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return 0
  }
}

describe.each(NODES)('on %s', (_name, hosts) => {
  test("sh -c 'seq; sleep 12 & exit 3' : sleep 100 -> status 3 at once, all output, no sleep left", async () => {
    const rank0 = 'seq 1 3000; sleep 12 & exit 3'
    const r = await ompx(['run', ...hosts(), '-np', '1', 'sh', '-c', rank0, ':', '-np', '1', 'sleep', '100'], { timeoutMs: 40_000 })
    expect(r.code).toBe(3)
    expect(r.ms).toBeLessThan(PROMPT_MS)
    // Written before the exit: all of it, in order, before the abort.
    expect(lines(r.stdout)).toEqual(Array.from({ length: 3000 }, (_, i) => String(i + 1)))
    expect(r.stderr).toMatch(/exited with status 3/)
    // Neither the background `sleep 12` nor the aborted `sleep 100` outlives the job.
    expect(await leftovers(currentMark(), 1000)).toEqual([])
  })

  test('kill -9 of an ompx shim rank: the job aborts at once and the program dies with it', async () => {
    const prog = 'echo "ready $OMPX_RANK"; exec sleep 30'
    const p = spawnOmpx(['run', ...hosts(), '-np', '2', OMPX, 'shim', '--', 'sh', '-c', prog], { timeoutMs: 40_000 })
    await p.waitFor(/^ready 0$/, 15_000)
    await p.waitFor(/^ready 1$/, 15_000)
    const shims = findMarked(currentMark()).filter((pid) => argv(pid)[1] === 'shim')
    expect(shims).toHaveLength(2)
    const shim = shims[0]!
    const programs = findMarked(currentMark()).filter((pid) => ppid(pid) === shim)
    expect(programs).toHaveLength(1)
    const t0 = performance.now()
    process.kill(shim, 'SIGKILL')
    const r = await p.done()
    expect(performance.now() - t0).toBeLessThan(PROMPT_MS)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/SIGKILL|signal 9|killed/i)
    // The program did not go on as an orphan (ppid 1) after its shim.
    expect(isAlive(programs[0]!)).toBe(false)
    expect(await leftovers(currentMark(), 1000)).toEqual([])
  })

  test('a rank that writes then exits while a background child holds its stdout: all output, prompt end', async () => {
    const rank = 'seq 1 20000; echo "last $OMPX_RANK" >&2; sleep 20 &'
    const r = await ompx(['run', ...hosts(), '-np', '2', 'sh', '-c', rank], { timeoutMs: 40_000 })
    expect(r.code).toBe(0)
    expect(r.ms).toBeLessThan(PROMPT_MS)
    const out = lines(r.stdout)
    expect(out).toHaveLength(40_000)
    expect(out.filter((l) => l === '20000')).toHaveLength(2)
    expect(lines(r.stderr).sort()).toEqual(['last 0', 'last 1'])
    expect(await leftovers(currentMark(), 1000)).toEqual([])
  })
})
