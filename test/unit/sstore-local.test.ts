/**
 * Sealing a rank dir (what the node daemon does after capture) and verifying it later: every
 * file listed with size and checksum, ompx-rank.json written last and not listed, odd file types
 * refused, and any damage (one flipped byte, truncation, a missing file) named precisely.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { StreamingChecksum, type ChecksumAlgo } from '../../src/sstore/checksum'
import { prepareRankDir, readRankMeta, sealRankDir } from '../../src/sstore/local-snapshot'
import { verifyFiles } from '../../src/sstore/verify'

/** Checksum of bytes in memory, through the same StreamingChecksum the store uses. */
function checksumBytes(data: Uint8Array, algo: ChecksumAlgo = 'crc32'): string {
  const c = new StreamingChecksum(algo)
  c.update(data)
  return c.digest()
}

const root = mkdtempSync(join(tmpdir(), 'ompx-sstore-local-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let n = 0
/** A rank dir with a few files, nested. */
function rankDirWith(files: Record<string, string | Uint8Array>): string {
  const dir = join(root, `rank_${++n}`)
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true })
    writeFileSync(join(dir, p), data)
  }
  mkdirSync(dir, { recursive: true })
  return dir
}

const base = { rank: 3, node: 'n1', crs: 'self', captureMs: 12 }

describe('sealRankDir', () => {
  test('lists every file sorted, with sizes and checksums; ompx-rank.json is written but not listed', async () => {
    const dir = rankDirWith({ 'state.bin': 'abcdef', 'b/z.txt': 'z', 'b/a.txt': '', 'a.txt': 'hello' })
    const meta = await sealRankDir(dir, { ...base, info: { pid: 42 } })
    expect(meta.files.map((f) => f.path)).toEqual(['a.txt', 'b/a.txt', 'b/z.txt', 'state.bin'])
    expect(meta.files[0]).toEqual({ path: 'a.txt', size: 5, sum: checksumBytes(new TextEncoder().encode('hello')) })
    expect(meta.bytes).toBe(12)
    expect(meta).toMatchObject({ rank: 3, node: 'n1', crs: 'self', captureMs: 12, info: { pid: 42 } })
    expect(JSON.parse(readFileSync(join(dir, 'ompx-rank.json'), 'utf8'))).toEqual(meta)
    expect(await readRankMeta(dir)).toEqual(meta)
    // Sealing again (e.g. a retry) does not list the ompx-rank.json of the first seal.
    expect((await sealRankDir(dir, base)).files.length).toBe(4)
  })

  test('sha256 when asked', async () => {
    const dir = rankDirWith({ x: 'x' })
    const meta = await sealRankDir(dir, base, 'sha256')
    expect(meta.files[0]!.sum).toMatch(/^sha256:[0-9a-f]{64}$/)
  })

  test('an empty capture is a valid snapshot with no files', async () => {
    const dir = rankDirWith({})
    expect((await sealRankDir(dir, base)).files).toEqual([])
  })

  test('symlinks and fifos are refused with a clear error', async () => {
    const dir = rankDirWith({ 'real.bin': 'x' })
    symlinkSync('/etc/passwd', join(dir, 'link'))
    await expect(sealRankDir(dir, base)).rejects.toThrow(`local snapshot ${dir}: link is a symlink; a snapshot may hold only regular files and directories`)
    const dir2 = rankDirWith({})
    Bun.spawnSync(['mkfifo', join(dir2, 'pipe')])
    await expect(sealRankDir(dir2, base)).rejects.toThrow('pipe is not a regular file (device, socket or fifo)')
  })

  test('a missing dir is an ActionableError', async () => {
    await expect(sealRankDir(join(root, 'nope'), base)).rejects.toBeInstanceOf(ActionableError)
  })

  test('prepareRankDir makes an empty 0700 dir, clearing leftovers', async () => {
    const dir = rankDirWith({ 'old/leftover': 'x' })
    await prepareRankDir(dir)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(await sealRankDir(dir, base)).toMatchObject({ files: [] })
  })
})

describe('verify', () => {
  async function sealed() {
    const data = new Uint8Array(100_000).map((_, i) => i % 251)
    const dir = rankDirWith({ 'img/pages.bin': data, 'core.txt': 'core' })
    const meta = await sealRankDir(dir, base)
    const verify = () => verifyFiles('snapshot ref1 seq 4', [{ dir, label: 'rank_3', files: meta.files }])
    return { dir, meta, verify }
  }

  test('an intact snapshot passes', async () => {
    const { verify } = await sealed()
    await verify()
  })

  test('one flipped byte is detected, naming the file and both checksums', async () => {
    const { dir, meta, verify } = await sealed()
    const p = join(dir, 'img/pages.bin')
    const b = readFileSync(p)
    b[54_321] = b[54_321]! ^ 0x01
    writeFileSync(p, b)
    const expected = meta.files.find((f) => f.path === 'img/pages.bin')!.sum
    const found = checksumBytes(b)
    await expect(verify()).rejects.toThrow(`snapshot ref1 seq 4: rank_3/img/pages.bin is corrupt (checksum ${expected} expected, ${found} found)`)
  })

  test('a truncated file is reported with both sizes', async () => {
    const { dir, verify } = await sealed()
    truncateSync(join(dir, 'img/pages.bin'), 99_999)
    await expect(verify()).rejects.toThrow('snapshot ref1 seq 4: rank_3/img/pages.bin has the wrong size (100000 bytes expected, 99999 found)')
  })

  test('a missing file is reported', async () => {
    const { dir, verify } = await sealed()
    unlinkSync(join(dir, 'core.txt'))
    const err = await verify().catch((e) => e)
    expect(err).toBeInstanceOf(ActionableError)
    expect(err.message).toBe('snapshot ref1 seq 4: rank_3/core.txt is missing')
  })
})
