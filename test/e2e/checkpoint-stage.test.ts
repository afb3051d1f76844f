/**
 * The stage snapshot store (docs/snapshots.md): ranks write node-locally, the daemons stream the
 * files to the HNP's global directory (optionally zstd-compressed), and a restart on nodes that
 * cannot read the global store gets its images staged to them. Checkpoints mid-run and with
 * --term, restarts on the same and on other nodes, the node-local copies, and a rank killed
 * during a staged checkpoint.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { lines, type OmpxProcess } from '../helpers'
import { APP, appArgv, expectRight, expectUserError, HOLD, holdArgv, kill, rankProcs, readGlobal, reference, snapshotRef, treeFiles, treeHash, waitIters } from './checkpoint-common'
import { ckptTestEnv, NP, type JobEnv } from './checkpoint-jobs'

const env = ckptTestEnv('stage', { timeoutMs: 60_000, testTimeoutMs: 90_000 })
/** pad.bin: about 8.8 MiB of compressible text per rank, more than two 4 MiB transfer chunks. */
const PAD = ['--pad-kb', '9000']
const ZSTD = ['--mca', 'sstore', 'stage', '--mca', 'sstore_stage_compress', 'zstd']

interface Ctx extends JobEnv {
  dir: string
  /** TMPDIR of the test: node dirs are $TMPDIR/ompx-node-<name>. */
  tmpd: string
  hold: string
  /** `start` of `argv` with snapshots to `dir`. */
  job(argv: string[], extra?: string[]): OmpxProcess
}

/** A test's own snapshot directory, TMPDIR and hold directory; every command runs with the latter two. */
function fresh(): Ctx {
  const dir = env.snapDir()
  const tmpd = env.mkdir('t')
  const hold = env.mkdir('hold-')
  const e = env.with({ TMPDIR: tmpd, CKPT_HOLD_DIR: hold })
  return { ...e, dir, tmpd, hold, job: (argv, extra = []) => e.start(dir, argv, { extra }) }
}

/** The node dirs of the test's HNPs: $TMPDIR/ompx-<user>/nodes-<hnp pid>/<node>. */
function nodeDirs(tmpd: string): string[] {
  const out: string[] = []
  for (const u of readdirSync(tmpd).filter((x) => x.startsWith('ompx-'))) {
    if (!statSync(join(tmpd, u)).isDirectory()) continue
    for (const h of readdirSync(join(tmpd, u)).filter((x) => x.startsWith('nodes-'))) {
      for (const node of readdirSync(join(tmpd, u, h))) out.push(join(tmpd, u, h, node))
    }
  }
  return out
}

/** Files left in the node-local snapshot and restart-staging areas of any node dir. */
function nodeLocal(tmpd: string): string[] {
  const out: string[] = []
  for (const d of nodeDirs(tmpd)) for (const area of ['snapshots', 'restart']) for (const f of treeFiles(join(d, area))) out.push(join(d, area, f))
  return out
}

/** (path relative to <node dir>/snapshots/<ref>/<seq>) -> sha256, over every node dir. */
function nodeCopies(tmpd: string, ref: string, seq: number): Record<string, string> {
  const out: Record<string, string> = {}
  for (const d of nodeDirs(tmpd)) for (const [f, sum] of Object.entries(treeHash(join(d, 'snapshots', ref, String(seq))))) out[f] = sum
  return out
}

describe('stage store', () => {
  test('checkpoint mid-run: the job goes on to the right checksums; every rank\'s files reached the global directory; restart on other nodes works', async () => {
    const want = reference('app', APP)
    const c = fresh()
    const p = c.job(appArgv(APP), ZSTD)
    let ref = ''
    try {
      await waitIters(p, NP, 20)
      const a = await c.checkpoint(p, ['--timing'], true)
      ;({ ref } = snapshotRef(a.stdout))
      expect(a.stdout).toContain('Store sync')
      await expectRight(p.done(), want)
    } finally {
      p.signal('SIGKILL')
    }
    const g = readGlobal(c.dir, ref)
    expect(g.params.sstore).toBe('stage')
    expect(g.seqs.map((s) => [s.seq, s.sstore])).toEqual([[0, 'stage']])
    const files = treeFiles(join(c.dir, ref, '0'))
    for (let rank = 0; rank < NP; rank++) {
      expect(files).toEqual(expect.arrayContaining([`rank_${rank}/state.bin`, `rank_${rank}/meta.json`, `rank_${rank}/ompx-rank.json`]))
      expect(statSync(join(c.dir, ref, '0', `rank_${rank}`, 'state.bin')).size).toBe(APP.size * 1024 * 1024)
    }
    // Pushed, so removed from the nodes (sstore_stage_keep_local 0).
    expect(nodeLocal(c.tmpd)).toEqual([])

    await expectRight(c.restart(c.dir, ref, ['-H', 'n3:2,n4:2', '--launcher', 'local']), want, true)
  })

  test('--term with compressible images: the files arrive byte for byte, restart on the same and on other nodes restores them', async () => {
    const want = reference('hold', HOLD)
    const c = fresh()
    const { ref } = await c.termAfter(c.job([...holdArgv(HOLD), ...PAD], ZSTD), 20, true)
    const seq = readGlobal(c.dir, ref).seqs[0]!
    for (const m of seq.ranks) {
      expect(m.files.map((f) => f.path).sort()).toEqual(['meta.json', 'pad.bin', 'state.bin'])
      for (const f of m.files) expect(statSync(join(c.dir, ref, '0', `rank_${m.rank}`, f.path)).size).toBe(f.size)
    }
    for (const [what, hosts] of [['same nodes', []], ['other nodes', ['-H', 'n5:1,n6:1,n7:2', '--launcher', 'local']]] as const) {
      const r = await c.restart(c.dir, ref, [...hosts])
      expect([what, r.stderr]).toEqual([what, ''])
      await expectRight(r, want)
      expect(lines(r.stdout).filter((l) => / restarted at /.test(l))).toHaveLength(NP)
    }
    // Images staged to nodes for the restarts are gone with the jobs.
    expect(nodeLocal(c.tmpd)).toEqual([])
  })

  test('sstore_stage_keep_local 1 keeps the node-local copies (while the job runs); without compression they equal the global copy', async () => {
    const want = reference('hold', HOLD)
    const c = fresh()
    const p = c.job([...holdArgv(HOLD), ...PAD], ['--mca', 'sstore', 'stage', '--mca', 'sstore_stage_keep_local', '1'])
    try {
      await waitIters(p, NP, 10)
      const { ref } = snapshotRef((await c.checkpoint(p)).stdout)
      const global = treeHash(join(c.dir, ref, '0'))
      // kv.json is the job's kv store, written by the HNP: no node has a copy of it.
      expect(global['kv.json']).toBeDefined()
      delete global['kv.json']
      const local = nodeCopies(c.tmpd, ref, 0)
      expect(Object.keys(local).sort()).toEqual(Object.keys(global).sort())
      for (const f of Object.keys(global)) if (!f.endsWith('ompx-rank.json')) expect([f, local[f]]).toEqual([f, global[f]])
      await expectRight(p.done(), want)
    } finally {
      p.signal('SIGKILL')
    }
  })

  test('with sstore_stage_keep_local 0 (the default) the node-local copy is gone once pushed', async () => {
    const c = fresh()
    const p = c.job([...holdArgv(HOLD), ...PAD], ZSTD)
    try {
      await waitIters(p, NP, 10)
      const { ref } = snapshotRef((await c.checkpoint(p)).stdout)
      // Four files per rank, and the job's kv store (kv.json, written by the HNP).
      expect(treeFiles(join(c.dir, ref, '0'))).toHaveLength(NP * 4 + 1)
      // Checked while the job still runs (node dirs go away with the job anyway).
      expect(nodeCopies(c.tmpd, ref, 0)).toEqual({})
      expect((await p.done()).code).toBe(0)
    } finally {
      p.signal('SIGKILL')
    }
  })
})

describe('stage store: failures', () => {
  test('kill -9 of a rank during a staged checkpoint: no new seq listed, seq 0 intact, restart from it works', async () => {
    const want = reference('hold', HOLD)
    const c = fresh()
    const p = c.job([...holdArgv(HOLD), ...PAD], ZSTD)
    const { ref } = await c.failDuring(p, { dir: c.dir, hold: c.hold, rank: 3 }, async (b) => {
      const victim = (await rankProcs(p.pid, c.opts())).find((x) => x.rank === 3)!.pid
      kill(victim, 'SIGKILL')
      const failed = await b.done()
      expectUserError(failed, /failed: .*rank 3\b.*no snapshot was taken/)
      expect(failed.stderr).toMatch(/seq 0 of ompx_global_snapshot_\S+ is intact/)
      expect((await p.done()).code).not.toBe(0)
    })
    // The abandoned attempt left nothing on the nodes either.
    expect(nodeLocal(c.tmpd)).toEqual([])
    await expectRight(c.restart(c.dir, ref), want)
    // Seq 1 stays reserved (an empty dir, so the number is never reused) and holds nothing.
    expect(existsSync(join(c.dir, ref, '1')) ? readdirSync(join(c.dir, ref, '1')) : []).toEqual([])
  })

  test('sstore_stage_compress with a bad value: the job does not start, and the error names the valid values', async () => {
    const c = fresh()
    const p = c.job(holdArgv(HOLD), ['--mca', 'sstore', 'stage', '--mca', 'sstore_stage_compress', 'lz4'])
    expectUserError(await p.done(), /sstore_stage_compress must be one of none, zstd, got "lz4"/)
  })
})
