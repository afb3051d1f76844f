/**
 * Bad input and jobs that cannot be checkpointed: `ompx checkpoint`, `ompx restart` and the C/R
 * options of `ompx run` refuse with one line on stderr and a non-zero exit, and a refused
 * checkpoint does not disturb the job.
 */
import { describe, expect, test } from 'bun:test'
import { cpSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FIXTURES, lines } from '../helpers'
import { BUN, checksums, dirArgs, expectUserError, holdArgv, snapshotRef, waitIters, type AppShape } from './checkpoint-common'
import { ckptTestEnv } from './checkpoint-jobs'

const { tmp, run, start } = ckptTestEnv('errors', { timeoutMs: 40_000, testTimeoutMs: 60_000, hosts: 'n1:1,n2:1', np: 2 })

const SNAP = join(tmp, 'snap')
const SHAPE: AppShape = { iters: 200, size: 64, sleepMs: 20 }

/** A finished snapshot (one seq, taken with --term) to restart from; made once. */
let made: Promise<string> | undefined
function snapshot(): Promise<string> {
  made ??= (async () => {
    const p = start(SNAP, holdArgv(SHAPE))
    try {
      await waitIters(p, 2, 10)
      const c = await run(['checkpoint', '--term', String(p.pid)])
      if (c.code !== 0) throw new Error(`checkpoint failed: ${c.stderr}`)
      const r = await p.done()
      if (r.code !== 0) throw new Error(`job failed: ${r.stderr}`)
      return snapshotRef(c.stdout).ref
    } finally {
      p.signal('SIGKILL')
    }
  })()
  return made
}

/** A pid that is certainly not running (above any pid_max). */
const NO_PID = '2147483600'

describe('ompx checkpoint: bad input', () => {
  test('no pid, a non-numeric pid, an unknown pid, a pid that is not an HNP', async () => {
    expectUserError(await run(['checkpoint']), /PID/)
    expectUserError(await run(['checkpoint', 'abc']), /"abc" is not a PID/)
    expectUserError(await run(['checkpoint', '12x']), /not a PID/)
    expectUserError(await run(['checkpoint', NO_PID]), new RegExp(`${NO_PID}.*not a running ompx HNP|no .*${NO_PID}`))
    // This test runner is a live process, but no HNP.
    expectUserError(await run(['checkpoint', String(process.pid)]), new RegExp(`${process.pid}.*not a running ompx HNP`))
    expectUserError(await run(['checkpoint', '-l', NO_PID]), new RegExp(NO_PID))
  })

  test('--term with --stop, and --list with either, are refused', async () => {
    expectUserError(await run(['checkpoint', '--term', '--stop', NO_PID]), /--term and --stop/)
    expectUserError(await run(['checkpoint', '--stop', '--term', String(process.pid)]), /--term and --stop/)
    expectUserError(await run(['checkpoint', '-l', '--term', NO_PID]), /--list/)
    expectUserError(await run(['checkpoint', '--bogus', NO_PID]), /bogus/)
  })
})

describe('jobs that cannot be checkpointed', () => {
  const RANKS = ['sh', '-c', 'echo "ready $OMPX_RANK"; sleep 2; echo "done $OMPX_RANK"']

  for (const crs of [null, 'none']) {
    test(`crs none (${crs ? 'explicit' : 'the default'}): "not checkpointable", exit != 0, and the job is not disturbed`, async () => {
      const p = start(join(tmp, `none-${crs}`), RANKS, { crs })
      try {
        await p.waitFor(/^ready 0$/, 20_000)
        await p.waitFor(/^ready 1$/, 20_000)
        const c = await run(['checkpoint', String(p.pid)])
        expectUserError(c, /not checkpointable/)
        expect(c.stderr).toMatch(/crs|CRS/)
        expect(c.stdout).toBe('')
        for (const extra of [['--term'], ['--stop']]) expectUserError(await run(['checkpoint', ...extra, String(p.pid)]), /not checkpointable/)
        const r = await p.done()
        expect(r.code).toBe(0)
        expect(lines(r.stdout).sort()).toEqual(['done 0', 'done 1', 'ready 0', 'ready 1'])
      } finally {
        p.signal('SIGKILL')
      }
    })
  }

  test('crs self, but the ranks never reach the INIT barrier: "not checkpointable yet", naming the ranks', async () => {
    const p = start(join(tmp, 'noinit'), RANKS)
    try {
      await p.waitFor(/^ready 0$/, 20_000)
      await p.waitFor(/^ready 1$/, 20_000)
      const c = await run(['checkpoint', String(p.pid)])
      expectUserError(c, /not checkpointable/)
      expect(c.stderr).toMatch(/INIT/)
      expect(c.stderr).toMatch(/ranks? 0,1|0, 1/)
      const r = await p.done()
      expect(r.code).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('ompx restart: bad input', () => {
  test('no ref, an unknown ref, an unknown path', async () => {
    expectUserError(await run(['restart', ...dirArgs(SNAP)]), /snapshot reference/)
    const r = await run(['restart', ...dirArgs(SNAP), 'ompx_global_snapshot_nosuch.ckpt'])
    expectUserError(r, /no snapshot ompx_global_snapshot_nosuch\.ckpt in /)
    expect(r.stdout).toBe('')
    expectUserError(await run(['restart', ...dirArgs(join(tmp, 'empty-dir')), 'ompx_global_snapshot_1.1.ckpt']), /no snapshot/)
    expectUserError(await run(['restart', ...dirArgs(SNAP), join(tmp, 'nowhere', 'ompx_global_snapshot_9.1.ckpt')]), /ompx_global_snapshot_9\.1\.ckpt/)
  })

  test('--seq 99, --seq abc, --seq -1', async () => {
    const ref = await snapshot()
    const r = await run(['restart', '--seq', '99', ...dirArgs(SNAP), ref])
    expectUserError(r, /no seq 99 \(finished seqs: 0\)/)
    expect(r.stdout).toBe('')
    expectUserError(await run(['restart', '--seq', 'abc', ...dirArgs(SNAP), ref]), /--seq/)
    expectUserError(await run(['restart', '--seq', '-1', ...dirArgs(SNAP), ref]), /--seq/)
    expectUserError(await run(['restart', '-i', '--seq', '99', ...dirArgs(SNAP), ref]), /no seq 99/)
  })

  test('the ref may be given bare, as the .ckpt directory or as its global.json', async () => {
    const ref = await snapshot()
    for (const given of [ref, join(SNAP, ref), join(SNAP, ref, 'global.json')]) {
      // A path wins over the directory parameter (set to an empty one: never ~/.ompx).
      const args = given === ref ? ['restart', '-i', ...dirArgs(SNAP), given] : ['restart', '-i', ...dirArgs(join(tmp, 'elsewhere')), given]
      const r = await run(args)
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`Snapshot ${ref}`)
    }
  })

  test('a restart with too few slots says so and starts nothing', async () => {
    const ref = await snapshot()
    const r = await run(['restart', '-H', 'n5:1', '--launcher', 'local', ...dirArgs(SNAP), ref])
    expectUserError(r, /slot|oversubscribe/)
    expect(checksums(r.stdout)).toEqual({})
  })
})

describe('ompx restart: tampered metadata and rank dirs are refused before any rank starts', () => {
  /** Restart the shared snapshot after `tamper`, expect one line naming snapshot, rank and entry; then undo. */
  async function refused(tamper: (seq0: string, gj: string) => () => void, want: RegExp): Promise<string> {
    const ref = await snapshot()
    const seq0 = join(SNAP, ref, '0')
    const undo = tamper(seq0, join(SNAP, ref, 'global.json'))
    try {
      const r = await run(['restart', ...dirArgs(SNAP), ref])
      expectUserError(r, want)
      expect(lines(r.stderr)).toHaveLength(1)
      expect(checksums(r.stdout)).toEqual({})
      return r.stderr
    } finally {
      undo()
    }
  }
  /** Edit global.json; the undo puts the original back. */
  const editMeta = (edit: (m: any) => void) => (_: string, gj: string) => {
    const text = readFileSync(gj, 'utf8')
    const m = JSON.parse(text)
    edit(m)
    writeFileSync(gj, JSON.stringify(m))
    return () => writeFileSync(gj, text)
  }

  test('a file path leaving the rank dir, with the right size and checksum of the outside file', async () => {
    const outside = join(tmp, 'outside.bin')
    writeFileSync(outside, 'y'.repeat(54321))
    const stderr = await refused(
      editMeta((m) => m.seqs[0].ranks[1].files.push({ path: '../../../../outside.bin', size: 54321, sum: `crc32:${Bun.hash.crc32(readFileSync(outside)).toString(16).padStart(8, '0')}` })),
      /global\.json is not valid snapshot metadata: seq 0: rank 1: file path "\.\.\/\.\.\/\.\.\/\.\.\/outside\.bin" has a "\.\." component/,
    )
    expect(stderr).toContain(await snapshot())
    // With a wrong size, nothing about the outside file is told.
    const wrong = await refused(editMeta((m) => m.seqs[0].ranks[0].files.push({ path: '../../../../outside.bin', size: 1, sum: 'crc32:00000000' })), /rank 0: file path/)
    expect(wrong).not.toContain('54321')
  })

  test('"ranks": [] verifies nothing and is refused', async () => {
    await refused(editMeta((m) => (m.seqs[0].ranks = [])), /seq 0: rank 0 of the job \(np 2\) is missing from ranks/)
  })

  test('an unlisted file in a rank dir', async () => {
    await refused((seq0) => {
      writeFileSync(join(seq0, 'rank_1', 'unlisted.bin'), 'planted')
      return () => unlinkSync(join(seq0, 'rank_1', 'unlisted.bin'))
    }, /snapshot ompx_global_snapshot_\S+ seq 0: rank_1\/unlisted\.bin \(a file\) is not listed in the snapshot metadata/)
  })

  test('a rank dir replaced by a symlink to a copy of itself', async () => {
    await refused((seq0) => {
      const dir = join(seq0, 'rank_0')
      cpSync(dir, `${dir}.copy`, { recursive: true })
      renameSync(dir, `${dir}.real`)
      symlinkSync(`${dir}.copy`, dir)
      return () => {
        unlinkSync(dir)
        rmSync(`${dir}.copy`, { recursive: true })
        renameSync(`${dir}.real`, dir)
      }
    }, /seq 0: rank_0 is a symlink, not a directory/)
  })
})

describe('kv store limit', () => {
  test('a put past snapc_kv_max_bytes fails in the app with a message naming the limit; the job goes on', async () => {
    const argv = [BUN, join(FIXTURES, 'kv-fill.ts'), '--max-puts', '40']
    const r = await run(['run', '--launcher', 'local', '-H', 'n1:1,n2:1', '-np', '2', '--mca', 'snapc_kv_max_bytes', '1048576', ...dirArgs(join(tmp, 'kv')), '--', ...argv])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^kv full after 15 puts: ompx\/app: put\("fill\.15"\): the job's kv store is full: it holds \d+ bytes, this put would make it \d+, more than snapc_kv_max_bytes 1048576 \(1 MiB\)$/m)
    expect(r.stdout).toMatch(/^last value 65536 bytes$/m)
  })
})

describe('ompx run: bad C/R options', () => {
  const APP = ['true']
  const cases: [string, string[], RegExp][] = [
    ['--ckpt-interval with crs none', ['--ckpt-interval', '1s'], /checkpointable/],
    ['--enable-recovery with crs none', ['--enable-recovery'], /checkpointable/],
    ['--ckpt-interval abc', ['--mca', 'crs', 'self', '--ckpt-interval', 'abc'], /--ckpt-interval/],
    ['--ckpt-interval 0', ['--mca', 'crs', 'self', '--ckpt-interval', '0'], /--ckpt-interval/],
    ['--keep 0', ['--mca', 'crs', 'self', '--keep', '0'], /--keep/],
    ['--keep x', ['--mca', 'crs', 'self', '--keep', 'x'], /--keep/],
    ['--max-restarts without --enable-recovery', ['--mca', 'crs', 'self', '--max-restarts', '2'], /--enable-recovery/],
    ['--recovery-delay without --enable-recovery', ['--mca', 'crs', 'self', '--recovery-delay', '1'], /--enable-recovery/],
    ['--max-restarts -1', ['--mca', 'crs', 'self', '--enable-recovery', '--max-restarts', '-1'], /--max-restarts/],
    ['an unknown crs', ['--mca', 'crs', 'nosuch'], /nosuch/],
    ['an unknown sstore', ['--mca', 'crs', 'self', '--mca', 'sstore', 'nosuch'], /nosuch/],
  ]
  for (const [what, args, re] of cases) {
    test(what, async () => {
      const r = await run(['run', '--launcher', 'local', '-H', 'n1:1', '-np', '1', ...dirArgs(join(tmp, 'bad')), ...args, '--', ...APP])
      expectUserError(r, re)
    })
  }
})
