/**
 * `ompx run` failure paths: bad input (one stderr line, non-zero, no stack trace), the job's exit
 * status, rank death messages, errmgr_continue and --timeout; bounds and parameters checked at
 * launch, and the user errors of ompx orted and ompx restart.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { guardLeftovers, lines, ompx, userErrorProblems } from '../helpers'

guardLeftovers()
// Per test; ompx calls have their own hard timeouts (helpers.ts). bunfig has no test timeout key.
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-run-errors-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
writeFileSync(join(tmp, 'bad-hosts'), 'localhost slots=x\n')

describe('bad input: one line on stderr, non-zero exit, no stack trace', () => {
  const cases: [string, string[], RegExp][] = [
    ['-np 0', ['-np', '0', 'true'], /np|process/i],
    ['-np x', ['-np', 'x', 'true'], /np|number|integer/i],
    ['-np -3', ['-np', '-3', 'true'], /np|number|integer|positive/i],
    ['missing program', ['-np', '2'], /program|executable|nothing to run/i],
    ['missing program after --', ['-np', '2', '--'], /program|executable|nothing to run/i],
    ['unknown mapper', ['--map-by', 'foo', '-np', '2', 'true'], /foo/],
    ['unknown option with hint', ['--oversubscrib', '-np', '2', 'true'], /did you mean --oversubscribe/],
    ['nonexistent program', ['-np', '2', './nope'], /nope/],
    ['nonexistent --wdir', ['--wdir', '/nonexistent/ompx-dir', '-np', '2', 'true'], /nonexistent\/ompx-dir/],
    ['bad --stdin', ['--stdin', 'bogus', '-np', '2', 'true'], /stdin|bogus/i],
    ['missing program after :', ['-np', '2', 'true', ':', '-np', '2'], /program|executable|nothing to run/i],
    ['directory as program', ['-np', '1', '/tmp'], /\/tmp/],
    ['bad -x name', ['-x', '1BAD', '-np', '1', 'true'], /1BAD/],
    ['--stdin rank out of range', ['--stdin', '5', '-np', '2', 'true'], /stdin|5/],
    ['missing hostfile', ['--hostfile', 'no-such-hostfile', 'true'], /no-such-hostfile/],
    ['bad hostfile line', ['--hostfile', 'bad-hosts', 'true'], /bad-hosts:1/],
    ['--timeout 0', ['--timeout', '0', '-np', '1', 'true'], /timeout/],
    ['--map-by ppr:0:node', ['--map-by', 'ppr:0:node', 'true'], /ppr/],
    // #11: sizes are bounded before anything is allocated per slot.
    ['-H n1:2147483648', ['-H', 'n1:2147483648', '-np', '3', 'true'], /at most 1048576/],
    ['-H n1:99999999999999999999', ['-H', 'n1:99999999999999999999', 'true'], /at most 1048576/],
    ['-np 99999999999999999999', ['-np', '99999999999999999999', 'true'], /at most 1048576/],
    // #11: every parameter is checked at launch, not at checkpoint or restart time.
    ['--mca sstore_base_checksum md5', ['--mca', 'sstore_base_checksum', 'md5', 'true'], /one of crc32, sha256, got "md5" \(from --mca sstore_base_checksum\)/],
    ['--mca snapc_base_timeout -5', ['--mca', 'snapc_base_timeout', '-5', 'true'], /snapc_base_timeout must be a number more than 0/],
    ['--mca sstore_stage_compress gzip', ['--mca', 'sstore_stage_compress', 'gzip', 'true'], /one of none, zstd/],
    ['--mca sstore_stage_compress_level 99', ['--mca', 'sstore_stage_compress_level', '99', 'true'], /whole number from 1 to 22/],
    ['--mca sstore_base_verify foo', ['--mca', 'sstore_base_verify', 'foo', 'true'], /one of checksum, size/],
    ['--output-filename /proc/out', ['--output-filename', '/proc/ompx-out', '-np', '1', 'true'], /--output-filename \/proc\/ompx-out: cannot create/],
  ]
  test.each(cases)('%s', async (_name, args, re) => {
    const r = await ompx(['run', ...args], { cwd: tmp })
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(re)
    expect(r.stderr).not.toMatch(/internal error/)
    expect(r.stdout).toBe('')
  })
})

describe('other roles: one line saying what and why', () => {
  test('ompx orted that cannot reach its HNP names the URI and the reason', async () => {
    const r = await ompx(['orted', '--hnp', 'tcp://127.0.0.1:1', '--node', 'n1'], { stdin: `${'0'.repeat(64)}\n` })
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(/tcp:\/\/127\.0\.0\.1:1/)
  })

  test.each([
    ['/nonexistent-ompx/x.ckpt', /cannot read snapshot \/nonexistent-ompx\/x\.ckpt: ENOENT/],
    ['/etc/passwd/x.ckpt', /cannot read snapshot \/etc\/passwd\/x\.ckpt: ENOTDIR/],
    ['/etc', /\/etc is not a snapshot: it has no global\.json/],
  ])('ompx restart %s says why it cannot be read', async (path, re) => {
    const r = await ompx(['restart', path])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(re)
    expect(r.stderr).not.toMatch(/has none/)
  })
})

describe('exit status', () => {
  // Rank 1 exits 7 at once; rank 3 would exit 9 a second later (or is killed by the abort).
  const prog = ['sh', '-c', 'case $OMPX_RANK in 1) exit 7;; 3) sleep 1; exit 9;; esac']

  test('all ranks exit 0 -> 0', async () => {
    const r = await ompx(['run', '--oversubscribe', '-np', '4', 'true'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  test('ranks 1 and 3 exit 7 and 9 -> 7, with a message naming rank 1', async () => {
    const r = await ompx(['run', '--oversubscribe', '-np', '4', ...prog])
    expect(r.code).toBe(7)
    expect(r.stderr).toMatch(/rank\D{0,3}1\b/i)
  })

  test('same with --mca errmgr_continue 1: both run to the end, exit 7', async () => {
    const r = await ompx(['run', '--mca', 'errmgr_continue', '1', '--oversubscribe', '-np', '4', ...prog])
    expect(r.code).toBe(7)
  })

  test('the lowest failing rank wins even if it fails last', async () => {
    const r = await ompx(['run', '--mca', 'errmgr_continue', '1', '-np', '2', 'sh', '-c', '[ $OMPX_RANK = 0 ] && { sleep 1; exit 4; }; exit 5'])
    expect(r.code).toBe(4)
  })
})

test('a rank killed by SIGKILL aborts the job; message names rank, pid, node, signal', async () => {
  const prog = 'if [ $OMPX_RANK = 1 ]; then echo "victim pid=$$ node=$OMPX_NODE"; kill -KILL $$; fi; exec sleep 30'
  const r = await ompx(['run', '--oversubscribe', '-np', '3', 'sh', '-c', prog], { timeoutMs: 20_000 })
  expect(r.code).not.toBe(0)
  const m = r.stdout.match(/victim pid=(\d+) node=(\S+)/)
  expect(m).not.toBeNull()
  const [, pid, node] = m!
  expect(r.stderr).toMatch(/rank\D{0,3}1\b/i)
  expect(r.stderr).toContain(pid!)
  expect(r.stderr).toContain(node!)
  expect(r.stderr).toMatch(/SIGKILL|Killed|signal 9/)
  expect(r.stderr).not.toMatch(/^\s+at\s/m)
})

test('without errmgr_continue a failing rank terminates the others', async () => {
  const prog = 'if [ $OMPX_RANK = 0 ]; then exit 3; fi; exec sleep 30'
  const r = await ompx(['run', '--oversubscribe', '-np', '3', 'sh', '-c', prog], { timeoutMs: 20_000 })
  expect(r.code).toBe(3)
  expect(r.stderr).toMatch(/rank\D{0,3}0\b/i)
})

test('--mca errmgr_continue 1 lets the other ranks finish', async () => {
  const prog = 'if [ $OMPX_RANK = 0 ]; then exit 3; fi; sleep 1; echo "done $OMPX_RANK"'
  const r = await ompx(['run', '--mca', 'errmgr_continue', '1', '--oversubscribe', '-np', '3', 'sh', '-c', prog])
  expect(lines(r.stdout).sort()).toEqual(['done 1', 'done 2'])
  expect(r.code).toBe(3)
})

test('--timeout 2: job killed, exit 110 with a message', async () => {
  const r = await ompx(['run', '--timeout', '2', '-np', '2', 'sleep', '100'], { timeoutMs: 30_000 })
  expect(r.code).toBe(110)
  expect(r.stderr).toMatch(/time/i)
  expect(r.stderr).not.toMatch(/^\s+at\s/m)
  // Loose bound: 2 s timeout plus a grace period for SIGTERM -> SIGKILL.
  expect(r.ms).toBeLessThan(15_000)
})

test('--timeout also kills ranks that ignore SIGTERM', async () => {
  const prog = "trap '' TERM; echo up; while :; do sleep 1; done"
  const r = await ompx(['run', '--timeout', '1', '-np', '2', 'sh', '-c', prog], { timeoutMs: 60_000 })
  expect(r.code).toBe(110)
  expect(lines(r.stdout)).toEqual(['up', 'up'])
})
