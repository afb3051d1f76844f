/**
 * The global store: nothing exists before a commit, commits are atomic (crash debris is invisible
 * and cleaned up, a half-written temp file never matters), seq numbers are never reused, retention
 * keeps the newest, refs resolve from every form a user may type, and verify names bad files.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { GlobalSnapshot, type GlobalBase } from '../../src/sstore/global-snapshot'
import { listSnapshots } from '../../src/sstore/list-snapshots'
import { readRankMeta, sealRankDir } from '../../src/sstore/local-snapshot'
import { globalSnapshotDir, resolveSnapshot, snapshotRef } from '../../src/sstore/refs'
import type { SeqMeta } from '../../src/sstore/types'

const root = mkdtempSync(join(tmpdir(), 'ompx-sstore-global-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let n = 0
const newGlobalDir = () => {
  const d = join(root, `g${++n}`)
  mkdirSync(d)
  return d
}
const base: GlobalBase = {
  jobid: '77.1',
  apps: [{ index: 0, np: 2, argv: ['./app', '-x'], env: { A: '1' }, cwd: '/tmp' }],
  nodes: [{ name: 'n1', slots: 2 }],
  params: { crs: 'self', sstore: 'central' },
}

/** Take a "checkpoint": reserve a seq, write and seal two ranks, return its metadata (uncommitted). */
async function capture(snap: GlobalSnapshot, content = 'state'): Promise<SeqMeta> {
  const seq = snap.nextSeq()
  const ranks = []
  for (const rank of [0, 1]) {
    const dir = snap.rankDir(seq, rank)
    mkdirSync(join(dir, 'sub'), { recursive: true })
    writeFileSync(join(dir, 'sub', 'image.bin'), `${content} of rank ${rank} seq ${seq}`)
    ranks.push(await sealRankDir(dir, { rank, node: 'n1', crs: 'self', captureMs: 1 }))
  }
  const bytes = ranks.reduce((a, r) => a + r.bytes, 0)
  return { seq, started: 1, finished: Date.now(), crs: 'self', sstore: 'central', options: [], bytes, timing: {}, ranks, procs: [{ rank: 0, app: 0, node: 'n1' }, { rank: 1, app: 0, node: 'n1' }] }
}

describe('create, commit, open', () => {
  test('nothing is listed before the first commit; then global.json lists the seq', async () => {
    const g = newGlobalDir()
    const ref = snapshotRef('77.1')
    expect(ref).toBe('ompx_global_snapshot_77.1.ckpt')
    const snap = GlobalSnapshot.create(g, ref)
    expect(statSync(snap.dir).mode & 0o777).toBe(0o700)
    expect(GlobalSnapshot.tryOpen(g, ref)).toBeUndefined()
    expect(listSnapshots(g)).toEqual([])
    const s0 = await capture(snap)
    expect(s0.seq).toBe(0)
    await snap.commit(s0, base)
    const again = GlobalSnapshot.open(join(g, ref))
    expect(again.list().map((s) => s.seq)).toEqual([0])
    expect(again.committed).toMatchObject({ version: 1, ref, jobid: '77.1', apps: base.apps })
    await again.verify(0)
    expect(() => GlobalSnapshot.create(g, ref)).toThrow(ActionableError)
    expect(GlobalSnapshot.openOrCreate(g, ref).latest()?.seq).toBe(0)
  })

  test('a crash before commit leaves the previous snapshot intact; the debris is invisible, then cleaned', async () => {
    const g = newGlobalDir()
    const ref = snapshotRef('5.1')
    const snap = GlobalSnapshot.create(g, ref)
    await snap.commit(await capture(snap, 'good'), base)
    // seq 1 is captured but the HNP "dies" before committing it.
    const lost = await capture(snap, 'lost')
    expect(lost.seq).toBe(1)
    writeFileSync(join(snap.dir, 'global.json.tmp'), '{"version": 1, "ref": "trunc')
    const reopened = GlobalSnapshot.open(snap.dir)
    expect(reopened.list().map((s) => s.seq)).toEqual([0])
    expect(listSnapshots(g)[0]!.seqs.map((s) => s.seq)).toEqual([0])
    // The next checkpoint does not reuse 1, and its commit removes the debris of 1 and the temp file.
    const s2 = await capture(reopened)
    expect(s2.seq).toBe(2)
    await reopened.commit(s2, base)
    expect(readdirSync(snap.dir).sort()).toEqual(['0', '2', 'global.json'])
    await reopened.verify(0)
  })

  test('commit gives every rank dir a ompx-rank.json (stage-store dirs arrive without one)', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('15.1'))
    const s0 = await capture(snap)
    rmSync(join(snap.rankDir(0, 1), 'ompx-rank.json'))
    await snap.commit(s0, base)
    expect(await readRankMeta(snap.rankDir(0, 1))).toEqual(s0.ranks[1]!)
  })

  test('nextSeq never reuses an interrupted number, even with nothing committed', () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('9.1'))
    expect(snap.nextSeq()).toBe(0)
    expect(snap.nextSeq()).toBe(1)
    mkdirSync(join(snap.dir, '7'))
    expect(snap.nextSeq()).toBe(8)
    expect(GlobalSnapshot.create(g, snapshotRef('9.1')).nextSeq()).toBe(9)
  })

  test('a damaged global.json is an ActionableError naming the file', () => {
    const g = newGlobalDir()
    const dir = join(g, snapshotRef('3.1'))
    mkdirSync(dir)
    writeFileSync(join(dir, 'global.json'), '{ not json')
    expect(() => GlobalSnapshot.open(dir)).toThrow(`${join(dir, 'global.json')} is not valid JSON: the snapshot metadata is damaged`)
    writeFileSync(join(dir, 'global.json'), JSON.stringify({ version: 1, ref: 'x', jobid: '3.1', created: 1, apps: base.apps, nodes: [], params: {}, seqs: [{ seq: 'a' }] }))
    expect(() => GlobalSnapshot.open(dir)).toThrow('is not valid snapshot metadata: seqs[0].seq is not a sequence number')
    const listed = listSnapshots(g)
    expect(listed[0]!.error).toContain('is not valid snapshot metadata')
  })

  test('get and verify of an unknown seq', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('4.1'))
    await expect(snap.verify()).rejects.toThrow('has no finished seq to verify')
    await snap.commit(await capture(snap), base)
    expect(() => snap.get(5)).toThrow('snapshot ompx_global_snapshot_4.1.ckpt has no seq 5 (finished seqs: 0)')
  })

  test('verify names the first bad file with the ref and seq', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('6.1'))
    await snap.commit(await capture(snap), base)
    writeFileSync(join(snap.rankDir(0, 1), 'sub', 'image.bin'), 'state of rank 1 seq 0'.replace('r', 'R'))
    await expect(snap.verify(0)).rejects.toThrow(/^snapshot ompx_global_snapshot_6\.1\.ckpt seq 0: rank_1\/sub\/image\.bin is corrupt \(checksum crc32:[0-9a-f]{8} expected, crc32:[0-9a-f]{8} found\)$/)
  })
})

describe('retention and removal', () => {
  test('retention: a commit with keep N lists only the newest N in the same write, then drops the older dirs; 0 keeps all', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('8.1'))
    for (let i = 0; i < 3; i++) await snap.commit(await capture(snap), base, 0)
    expect(snap.list().map((s) => s.seq)).toEqual([0, 1, 2])
    await snap.commit(await capture(snap), base, 2)
    expect(snap.list().map((s) => s.seq)).toEqual([2, 3])
    expect(GlobalSnapshot.open(snap.dir).list().map((s) => s.seq)).toEqual([2, 3])
    expect([0, 1].map((s) => existsSync(snap.seqDir(s)))).toEqual([false, false])
    await snap.commit(await capture(snap), base, 1)
    expect(snap.list().map((s) => s.seq)).toEqual([4])
    expect(existsSync(snap.seqDir(3))).toBe(false)
    expect(snap.latest()?.seq).toBe(4)
    await snap.verify()
  })

  test('remove deletes the whole snapshot', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('10.1'))
    await snap.commit(await capture(snap), base)
    await snap.remove()
    expect(readdirSync(g)).toEqual([])
  })
})

describe('refs and listing', () => {
  test('resolveSnapshot takes a bare ref, the .ckpt path or the global.json path', async () => {
    const g = newGlobalDir()
    const ref = snapshotRef('11.2')
    const snap = GlobalSnapshot.create(g, ref)
    await snap.commit(await capture(snap), base)
    const want = { ref, dir: join(g, ref) }
    expect(resolveSnapshot(ref, g)).toEqual(want)
    expect(resolveSnapshot(join(g, ref), '/nonexistent')).toEqual(want)
    expect(resolveSnapshot(`${join(g, ref)}/`, '/nonexistent')).toEqual(want)
    expect(resolveSnapshot(join(g, ref, 'global.json'), '/nonexistent')).toEqual(want)
    expect(() => resolveSnapshot('ompx_global_snapshot_12.1.ckpt', g)).toThrow(`no snapshot ompx_global_snapshot_12.1.ckpt in ${g} (available: ${ref})`)
    expect(() => resolveSnapshot('ompx_global_snapshot_1.1.ckpt', newGlobalDir())).toThrow(/\(it has none\)$/)
  })

  test('listSnapshots shows each ref with its seqs', async () => {
    const g = newGlobalDir()
    const snap = GlobalSnapshot.create(g, snapshotRef('13.1'))
    await snap.commit(await capture(snap), base)
    await snap.commit(await capture(snap), base)
    GlobalSnapshot.create(g, snapshotRef('14.1')) // never committed: not listed
    const [only, ...rest] = listSnapshots(g)
    expect(rest).toEqual([])
    expect(only).toMatchObject({ ref: 'ompx_global_snapshot_13.1.ckpt', jobid: '77.1', argv: ['./app', '-x'] })
    expect(only!.seqs.map((s) => [s.seq, s.ranks, s.crs])).toEqual([[0, 2, 'self'], [1, 2, 'self']])
    expect(only!.seqs[0]!.bytes).toBeGreaterThan(0)
  })

  test('globalSnapshotDir: default under home, ~ expansion, created 0700, unusable path is actionable', () => {
    const home = join(root, 'home')
    const get = (v: string) => (k: string) => (k === 'sstore_base_global_snapshot_dir' ? v : undefined)
    const d = globalSnapshotDir({ get: get(''), home, cwd: root })
    expect(d).toBe(join(home, '.ompx', 'snapshots'))
    expect(statSync(d).mode & 0o777).toBe(0o700)
    expect(globalSnapshotDir({ get: get('~/snaps'), home, cwd: root })).toBe(join(home, 'snaps'))
    expect(globalSnapshotDir({ get: get('rel'), home, cwd: root })).toBe(join(root, 'rel'))
    writeFileSync(join(root, 'afile'), '')
    expect(() => globalSnapshotDir({ get: get(join(root, 'afile', 'x')), home, cwd: root })).toThrow(ActionableError)
  })
})
