/**
 * `ompx run` IO forwarding: tagging, timestamps, per-rank files, stderr merging, stdin routing,
 * and no torn or lost lines with many fast ranks (C fixture test/fixtures/lines.c).
 */
import { $ } from 'bun'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, lines, ompx, shell } from '../helpers'

guardLeftovers()
// Per test; ompx calls have their own hard timeouts (helpers.ts). bunfig has no test timeout key.
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-run-io-'))
const LINES = join(tmp, 'lines')
beforeAll(async () => {
  await $`cc -O2 -o ${LINES} ${join(FIXTURES, 'lines.c')}`
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const OUT_ERR = ['sh', '-c', 'echo "out $OMPX_RANK"; echo "err $OMPX_RANK" >&2']
/** [jobid,rank]<stream>:text -- the jobid is whatever OMPX_JOBID says (e.g. 7840.1). */
const TAG = /^\[([^,\]]+),(\d+)\]<(stdout|stderr)>:(.*)$/

describe('output formatting', () => {
  test('--tag-output: [jobid,rank]<stdout>: and <stderr>:', async () => {
    const r = await ompx(['run', '--tag-output', '-np', '2', 'sh', '-c', 'echo "out $OMPX_RANK $OMPX_JOBID"; echo "err $OMPX_RANK" >&2'])
    expect(r.code).toBe(0)
    const out = lines(r.stdout)
    const err = lines(r.stderr)
    expect(out).toHaveLength(2)
    expect(err).toHaveLength(2)
    const jobids = new Set<string>()
    for (const l of out) {
      const m = l.match(TAG)
      expect(m).not.toBeNull()
      const [, job, rank, stream, text] = m!
      expect(stream).toBe('stdout')
      expect(text).toBe(`out ${rank} ${job}`)
      jobids.add(job!)
    }
    for (const l of err) {
      const m = l.match(TAG)
      expect(m).not.toBeNull()
      expect(m![3]).toBe('stderr')
      expect(m![4]).toBe(`err ${m![2]}`)
      jobids.add(m![1]!)
    }
    expect([...jobids]).toHaveLength(1)
    expect(out.map((l) => l.match(TAG)![2]).sort()).toEqual(['0', '1'])
  })

  test('--timestamp-output puts a timestamp before each line', async () => {
    const r = await ompx(['run', '--timestamp-output', '-np', '2', ...OUT_ERR])
    expect(r.code).toBe(0)
    const all = [...lines(r.stdout), ...lines(r.stderr)]
    expect(all).toHaveLength(4)
    for (const l of all) {
      const m = l.match(/^(.*?)((out|err) \d)$/)
      expect(m).not.toBeNull()
      expect(m![1]).toMatch(/\d\d:\d\d:\d\d|\d{10}/)
    }
  })

  test('--output-filename F writes rank r to F.<r>', async () => {
    const dir = join(tmp, 'outfiles')
    mkdirSync(dir)
    const r = await ompx(['run', '--output-filename', join(dir, 'job'), '--oversubscribe', '-np', '3', ...OUT_ERR])
    expect(r.code).toBe(0)
    expect(r.stdout + r.stderr).not.toMatch(/(out|err) \d/)
    expect(readdirSync(dir).sort()).toEqual(['job.0', 'job.1', 'job.2'])
    for (const rank of [0, 1, 2]) {
      expect(lines(readFileSync(join(dir, `job.${rank}`), 'utf8')).sort()).toEqual([`err ${rank}`, `out ${rank}`])
    }
  })

  test('--output-filename in a missing directory: created (as mpirun does) or a clear error', async () => {
    const r = await ompx(['run', '--output-filename', join(tmp, 'missing', 'sub', 'job'), '-np', '1', 'echo', 'hi'])
    if (r.code === 0) expect(readFileSync(join(tmp, 'missing', 'sub', 'job.0'), 'utf8')).toBe('hi\n')
    else expect(r.stderr).not.toMatch(/internal error/)
  })

  test('--merge-stderr-to-stdout', async () => {
    const r = await ompx(['run', '--merge-stderr-to-stdout', '-np', '2', ...OUT_ERR])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(lines(r.stdout).sort()).toEqual(['err 0', 'err 1', 'out 0', 'out 1'])
  })
})

describe('line integrity', () => {
  test('a last line without newline is kept whole and left unterminated (as mpirun does)', async () => {
    const r = await ompx(['run', '-np', '2', 'sh', '-c', 'printf "tail$OMPX_RANK"'])
    expect(r.code).toBe(0)
    expect(['tail0tail1', 'tail1tail0']).toContain(r.stdout)
  })

  test('1 MB lines written in pieces by 4 ranks stay whole', async () => {
    // Each rank writes its line in 1000 printf calls of 1000 bytes, then the newline.
    const prog = 'i=0; c=$(printf "%1000s" "" | tr " " "$OMPX_RANK"); while [ $i -lt 1000 ]; do printf %s "$c"; i=$((i+1)); done; echo'
    const r = await ompx(['run', '--oversubscribe', '-np', '4', 'sh', '-c', prog], { timeoutMs: 60_000 })
    expect(r.code).toBe(0)
    const got = lines(r.stdout).map((l) => `${l[0]}x${l.length}${/^(.)\1*$/.test(l) ? '' : ' MIXED'}`)
    expect(got.sort()).toEqual(['0x1000000', '1x1000000', '2x1000000', '3x1000000'])
  })

  test('a reader that goes away (| head) ends the job instead of hanging', async () => {
    const r = await shell('"$OMPX" run -np 2 yes | head -n 2; echo done', { timeoutMs: 20_000 })
    expect(lines(r.stdout)).toEqual(['y', 'y', 'done'])
  })
})

describe('stdin', () => {
  const READ = ['sh', '-c', 'echo "r$OMPX_RANK:$(tr "\\n" ,)"']
  const input = 'alpha\nbeta\n'
  const run = (extra: string[]) => ompx(['run', ...extra, '--oversubscribe', '-np', '3', ...READ], { stdin: input, timeoutMs: 15_000 })

  test('default: rank 0 only, the others see EOF', async () => {
    const r = await run([])
    expect(r.code).toBe(0)
    expect(lines(r.stdout).sort()).toEqual(['r0:alpha,beta,', 'r1:', 'r2:'])
  })
  test('--stdin all', async () => {
    const r = await run(['--stdin', 'all'])
    expect(lines(r.stdout).sort()).toEqual(['r0:alpha,beta,', 'r1:alpha,beta,', 'r2:alpha,beta,'])
  })
  test('--stdin none', async () => {
    const r = await run(['--stdin', 'none'])
    expect(lines(r.stdout).sort()).toEqual(['r0:', 'r1:', 'r2:'])
  })
  test('a rank that stops reading early does not break ompx (EPIPE) nor lose output', async () => {
    const big = Array.from({ length: 200_000 }, (_, i) => `line ${i}`).join('\n') + '\n'
    const r = await ompx(['run', '-np', '2', 'head', '-n', '1'], { stdin: big, timeoutMs: 20_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual(['line 0'])
  })
  test('--stdin 2', async () => {
    const r = await run(['--stdin', '2'])
    expect(lines(r.stdout).sort()).toEqual(['r0:', 'r1:', 'r2:alpha,beta,'])
  })
})

describe('64 ranks x 1000 lines: nothing lost, duplicated or torn', () => {
  const N = 64
  const M = 1000
  const expected = (rank: number, i: number) => {
    const len = (rank * 7 + i * 13) % 120
    return `r${rank} l${i} ${String.fromCharCode(97 + ((rank + i) % 26)).repeat(len)}`
  }
  function check(texts: string[]) {
    const next = new Array<number>(N).fill(0)
    const bad: string[] = []
    for (const t of texts) {
      const m = t.match(/^r(\d+) l(\d+) /)
      const rank = m ? Number(m[1]) : -1
      if (!m || rank >= N || t !== expected(rank, Number(m[2]))) bad.push(t)
      else if (Number(m[2]) !== next[rank]) bad.push(`out of order or duplicated: ${t.slice(0, 40)} (want l${next[rank]})`)
      else next[rank]!++
    }
    expect(bad.slice(0, 5)).toEqual([])
    expect(next).toEqual(new Array(N).fill(M))
  }

  test('plain', async () => {
    const r = await ompx(['run', '--oversubscribe', '-np', String(N), LINES, String(M)], { timeoutMs: 60_000 })
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    check(lines(r.stdout))
  })

  test('--tag-output', async () => {
    const r = await ompx(['run', '--tag-output', '--oversubscribe', '-np', String(N), LINES, String(M)], { timeoutMs: 60_000 })
    expect(r.code).toBe(0)
    const texts: string[] = []
    const mismatched: string[] = []
    for (const l of lines(r.stdout)) {
      const m = l.match(TAG)
      if (!m || m[3] !== 'stdout' || !m[4]!.startsWith(`r${m[2]} `)) mismatched.push(l.slice(0, 60))
      else texts.push(m[4]!)
    }
    expect(mismatched.slice(0, 5)).toEqual([])
    check(texts)
  })
})
