/**
 * FlushAhead (src/sstore/flush-ahead.ts) with sealRankDir: files sealed while a writer is still
 * busy give exactly the checksums of a seal after it, a file written to again after it was taken
 * is read again, and stopping after a failed capture leaves no ompx-rank.json behind.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checksumFile } from '../../src/sstore/checksum'
import { FlushAhead } from '../../src/sstore/flush-ahead'
import { prepareRankDir, sealRankDir } from '../../src/sstore/local-snapshot'
import { RANK_META } from '../../src/sstore/types'

const root = mkdtempSync(join(tmpdir(), 'ompx-flush-ahead-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const base = { rank: 0, node: 'n1', crs: 'fake', captureMs: 1 }
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff))

describe('flush-ahead', () => {
  test('a file taken early is sealed as a seal after the capture would; one written again is read again', async () => {
    const dir = join(root, 'a')
    await prepareRankDir(dir)
    const ahead = new FlushAhead(dir, 'crc32')
    writeFileSync(join(dir, 'pages-1.img'), bytes(300_000, 1))
    writeFileSync(join(dir, 'core.img'), bytes(1000, 2))
    // Long enough to be quiet and taken; then core.img changes (same size: only mtime tells).
    await Bun.sleep(250)
    writeFileSync(join(dir, 'core.img'), bytes(1000, 3))
    writeFileSync(join(dir, 'inventory.img'), bytes(100, 4))
    const presealed = await ahead.stop()
    expect(presealed.has('pages-1.img')).toBe(true)
    const stale = presealed.get('core.img')
    const meta = await sealRankDir(dir, base, 'crc32', presealed)
    for (const f of meta.files) expect(f).toEqual({ path: f.path, ...(await checksumFile(join(dir, f.path))) })
    expect(meta.files.map((f) => f.path)).toEqual(['core.img', 'inventory.img', 'pages-1.img'])
    // core.img was taken before it changed: that result was not used.
    if (stale) expect(stale.sum).not.toBe(meta.files[0]!.sum)
  })

  test('an append after the file was taken is read again', async () => {
    const dir = join(root, 'b')
    await prepareRankDir(dir)
    const ahead = new FlushAhead(dir, 'crc32')
    writeFileSync(join(dir, 'pagemap.img'), bytes(5000, 5))
    await Bun.sleep(250)
    appendFileSync(join(dir, 'pagemap.img'), bytes(10, 6))
    const meta = await sealRankDir(dir, base, 'crc32', await ahead.stop())
    expect(meta.files).toEqual([{ path: 'pagemap.img', ...(await checksumFile(join(dir, 'pagemap.img'))) }])
    expect(meta.files[0]!.size).toBe(5010)
  })

  test('stopped after a failed capture: nothing written into the dir', async () => {
    const dir = join(root, 'c')
    await prepareRankDir(dir)
    const ahead = new FlushAhead(dir, 'sha256')
    writeFileSync(join(dir, 'pages-1.img'), bytes(100_000, 7))
    await Bun.sleep(250)
    expect((await ahead.stop()).get('pages-1.img')?.sum).toStartWith('sha256:')
    expect(existsSync(join(dir, RANK_META))).toBe(false)
    // A second stop is harmless (the daemon's failure path may call it again).
    await ahead.stop()
  })
})
