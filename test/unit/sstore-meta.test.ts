/**
 * Snapshot metadata is checked, not trusted (#11 item 6): a file path that leaves its rank dir,
 * a seq that does not list every rank of the job once, procs that disagree with the apps are
 * refused when global.json is read; unlisted files, symlinks and symlinked rank or seq dirs are
 * refused by verify, before any file is read. The kv store (#11 item 7) is `<seq>/kv.json`,
 * listed with its size and checksum; older snapshots with the kv inline still work.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checksumFile } from '../../src/sstore/checksum'
import { GlobalSnapshot, type GlobalBase } from '../../src/sstore/global-snapshot'
import { sealRankDir } from '../../src/sstore/local-snapshot'
import { snapshotRef } from '../../src/sstore/refs'
import type { GlobalMeta, SeqMeta } from '../../src/sstore/types'

const root = mkdtempSync(join(tmpdir(), 'ompx-sstore-meta-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const base: GlobalBase = {
  jobid: '8.1',
  apps: [{ index: 0, np: 2, argv: ['./app'], env: {}, cwd: '/tmp' }],
  nodes: [{ name: 'n1', slots: 2 }],
  params: { crs: 'self', sstore: 'central' },
}

let n = 0
/** A committed snapshot with one seq of two ranks (each `sub/image.bin`), kv { k: "v" }. */
async function committed(): Promise<GlobalSnapshot> {
  const g = join(root, `g${++n}`)
  mkdirSync(g)
  const snap = GlobalSnapshot.create(g, snapshotRef(`8.${n}`))
  const seq = snap.nextSeq()
  const ranks = []
  for (const rank of [0, 1]) {
    const dir = snap.rankDir(seq, rank)
    mkdirSync(join(dir, 'sub'), { recursive: true })
    writeFileSync(join(dir, 'sub', 'image.bin'), `state of rank ${rank}`)
    ranks.push(await sealRankDir(dir, { rank, node: 'n1', crs: 'self', captureMs: 1 }))
  }
  const procs = [0, 1].map((rank) => ({ rank, app: 0, node: 'n1' }))
  const s: SeqMeta = { seq, started: 1, finished: 2, crs: 'self', sstore: 'central', options: [], bytes: 0, timing: {}, ranks, procs, kv: { k: 'dg==' } }
  await snap.commit(s, base)
  return snap
}

const gjson = (snap: GlobalSnapshot) => join(snap.dir, 'global.json')
const readMeta = (snap: GlobalSnapshot) => JSON.parse(readFileSync(gjson(snap), 'utf8')) as GlobalMeta
/** Rewrite global.json with `edit` applied, then reopen it. */
function tamper(snap: GlobalSnapshot, edit: (m: GlobalMeta) => unknown): () => GlobalSnapshot {
  const m = readMeta(snap)
  edit(m)
  writeFileSync(gjson(snap), JSON.stringify(m))
  return () => GlobalSnapshot.open(snap.dir)
}

describe('global.json is checked against the schema', () => {
  test('a file path that leaves the rank dir is refused, even with the right size and sum, and no outside size is told', async () => {
    const snap = await committed()
    const outside = join(root, 'outside-secret.bin')
    writeFileSync(outside, 'x'.repeat(12345))
    const { size, sum } = await checksumFile(outside)
    const rel = `../../../../${outside.split('/').pop()}`
    const good = readFileSync(gjson(snap), 'utf8')
    const cases: [string, RegExp][] = [
      [rel, /seq 0: rank 1: file path "\.\.\/\.\.\/\.\.\/\.\.\/outside-secret\.bin" has a "\.\." component: it must stay inside the rank dir/],
      [outside, /rank 1: file path ".*" is absolute/],
      ['sub//image.bin', /rank 1: file path "sub\/\/image\.bin" has an empty component/],
      ['sub/\0x', /rank 1: file path ".*" contains a NUL byte/],
      ['ompx-rank.json', /rank 1: file path "ompx-rank\.json" is the rank's own metadata/],
    ]
    for (const [path, want] of cases) {
      const open = tamper(snap, (m) => m.seqs[0]!.ranks[1]!.files.push({ path, size, sum }))
      expect(open).toThrow(want)
      expect(open).toThrow(/^\S+global\.json is not valid snapshot metadata: /)
      try {
        open()
      } catch (err) {
        expect(String(err)).not.toContain('12345')
        expect(String(err)).not.toContain('\n')
      }
      writeFileSync(gjson(snap), good)
    }
  })

  test('every rank of the job exactly once, procs that agree with the apps', async () => {
    const snap = await committed()
    const good = readFileSync(gjson(snap), 'utf8')
    const cases: [(m: GlobalMeta) => void, RegExp][] = [
      [(m) => (m.seqs[0]!.ranks = []), /seq 0: rank 0 of the job \(np 2\) is missing from ranks/],
      [(m) => m.seqs[0]!.ranks.pop(), /rank 1 of the job \(np 2\) is missing/],
      [(m) => (m.seqs[0]!.ranks[1]!.rank = 0), /rank 0 is listed twice/],
      [(m) => (m.seqs[0]!.ranks[1]!.rank = 7), /rank 7 is not a rank of the job \(np 2\)/],
      [(m) => (m.seqs[0]!.procs = []), /procs lists 0 ranks, the job has 2/],
      [(m) => (m.seqs[0]!.procs[1]!.app = 3), /procs: rank 1 is in app 3, but there are 1 apps/],
      [(m) => (m.apps[0]!.np = 3), /rank 2 of the job \(np 3\) is missing/],
      [(m) => (m.seqs[0]!.kvFile!.path = '../kv.json'), /kvFile must be \{"path": "kv\.json"/],
      [(m) => m.seqs[0]!.ranks[0]!.files.push({ ...m.seqs[0]!.ranks[0]!.files[0]! }), /rank 0: file "sub\/image\.bin" is listed twice/],
    ]
    for (const [edit, want] of cases) {
      expect(tamper(snap, edit)).toThrow(want)
      writeFileSync(gjson(snap), good)
    }
    expect(GlobalSnapshot.open(snap.dir).list()).toHaveLength(1)
  })
})

describe('verify refuses what global.json does not list', () => {
  const what = (snap: GlobalSnapshot) => `snapshot ${snap.ref} seq 0: `

  test('an unlisted file or directory in a rank dir', async () => {
    const snap = await committed()
    writeFileSync(join(snap.rankDir(0, 1), 'extra.bin'), 'not in the metadata')
    await expect(snap.verify(0)).rejects.toThrow(`${what(snap)}rank_1/extra.bin (a file) is not listed in the snapshot metadata`)
    unlinkSync(join(snap.rankDir(0, 1), 'extra.bin'))
    mkdirSync(join(snap.rankDir(0, 0), 'sub', 'more'))
    await expect(snap.verify(0)).rejects.toThrow(`${what(snap)}rank_0/sub/more (a directory) is not listed in the snapshot metadata`)
    rmSync(join(snap.rankDir(0, 0), 'sub', 'more'), { recursive: true })
    await snap.verify(0)
  })

  test('a symlink inside a rank dir, in place of a listed file or directory, even with the right content', async () => {
    const snap = await committed()
    const img = join(snap.rankDir(0, 0), 'sub', 'image.bin')
    const copy = join(root, `copy-${n}.bin`)
    cpSync(img, copy)
    unlinkSync(img)
    symlinkSync(copy, img)
    await expect(snap.verify(0, 'size')).rejects.toThrow(`${what(snap)}rank_0/sub/image.bin is a symlink; a snapshot holds only the regular files its metadata lists`)
    unlinkSync(img)
    cpSync(copy, img)
    const sub = join(snap.rankDir(0, 1), 'sub')
    renameSync(sub, `${sub}.real`)
    symlinkSync(`${sub}.real`, sub)
    await expect(snap.verify(0)).rejects.toThrow(`${what(snap)}rank_1/sub is a symlink`)
  })

  test('a rank dir or a seq dir replaced by a symlink is not followed', async () => {
    const snap = await committed()
    const rank = snap.rankDir(0, 1)
    renameSync(rank, `${rank}.elsewhere`)
    symlinkSync(`${rank}.elsewhere`, rank)
    await expect(snap.verify(0)).rejects.toThrow(`${what(snap)}rank_1 is a symlink, not a directory`)
    unlinkSync(rank)
    renameSync(`${rank}.elsewhere`, rank)
    const seq = snap.seqDir(0)
    renameSync(seq, join(root, `seq-${n}`))
    symlinkSync(join(root, `seq-${n}`), seq)
    await expect(snap.verify(0)).rejects.toThrow(`${what(snap)}seq dir 0 is a symlink, not a directory`)
  })
})

describe('the kv store is its own checksummed file', () => {
  test('commit writes <seq>/kv.json, lists it with size and sum, keeps the kv out of global.json; verify reads it back', async () => {
    const snap = await committed()
    const s = readMeta(snap).seqs[0]!
    expect(s.kv).toBeUndefined()
    expect(s.kvFile).toMatchObject({ path: 'kv.json', size: readFileSync(join(snap.seqDir(0), 'kv.json')).length })
    expect(readFileSync(gjson(snap), 'utf8')).not.toContain('dg==')
    const again = GlobalSnapshot.open(snap.dir)
    expect((await again.verify(0)).kv).toEqual({ k: 'dg==' })
    // ... and a later commit does not put it back inline.
    expect(again.latest()!.kv).toEqual({ k: 'dg==' })
    const seq = again.nextSeq()
    for (const rank of [0, 1]) cpSync(again.rankDir(0, rank), again.rankDir(seq, rank), { recursive: true })
    await again.commit({ ...readMeta(snap).seqs[0]!, seq }, base)
    expect(readFileSync(gjson(snap), 'utf8')).not.toContain('dg==')
  })

  test('a damaged or missing kv.json is refused like any snapshot file', async () => {
    const snap = await committed()
    const kv = join(snap.seqDir(0), 'kv.json')
    writeFileSync(kv, '{"k":"dQ=="}')
    await expect(snap.verify(0)).rejects.toThrow(`snapshot ${snap.ref} seq 0: kv.json is corrupt`)
    unlinkSync(kv)
    await expect(snap.verify(0)).rejects.toThrow(`snapshot ${snap.ref} seq 0: kv.json is missing`)
  })

  test('an older snapshot with the kv inline in global.json still restarts with it, and keeps it', async () => {
    const snap = await committed()
    const open = tamper(snap, (m) => {
      delete m.seqs[0]!.kvFile
      m.seqs[0]!.kv = { old: 'b2xk' }
    })
    unlinkSync(join(snap.seqDir(0), 'kv.json'))
    const old = open()
    expect((await old.verify(0)).kv).toEqual({ old: 'b2xk' })
    expect(readMeta(snap).seqs[0]!.kv).toEqual({ old: 'b2xk' })
    expect(existsSync(join(snap.seqDir(0), 'kv.json'))).toBe(false)
  })
})
