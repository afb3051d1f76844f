/**
 * Checksums of snapshot files: chained crc32 equals one-shot crc32 whatever the chunking, files
 * give the same sums streamed in small or big chunks, and the parse/compare helpers accept only
 * what ompx writes.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { StreamingChecksum, algoOf, checksumAlgoParam, checksumFile, parseSum, sameSum, type ChecksumAlgo } from '../../src/sstore/checksum'

/** Checksum of bytes in memory, through the same StreamingChecksum the store uses. */
function checksumBytes(data: Uint8Array, algo: ChecksumAlgo = 'crc32'): string {
  const c = new StreamingChecksum(algo)
  c.update(data)
  return c.digest()
}

const dir = mkdtempSync(join(tmpdir(), 'ompx-sstore-sum-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)))
  return b
}

describe('crc32 chaining', () => {
  test('matches the standard check value', () => {
    expect(checksumBytes(new TextEncoder().encode('123456789'))).toBe('crc32:cbf43926')
    expect(checksumBytes(new Uint8Array(0))).toBe('crc32:00000000')
  })

  test('chained over any split equals one-shot', () => {
    const data = randomBytes(1_000_003)
    const oneShot = (Bun.hash.crc32(data) >>> 0).toString(16).padStart(8, '0')
    for (const cuts of [[1], [500_000], [7, 13, 999_999], [65_536, 131_072, 262_144, 524_288]]) {
      const c = new StreamingChecksum('crc32')
      let at = 0
      for (const cut of [...cuts, data.length]) {
        c.update(data.subarray(at, cut))
        at = cut
      }
      expect(c.digest()).toBe(`crc32:${oneShot}`)
    }
  })

  test('sha256 streamed equals one-shot', () => {
    const data = randomBytes(300_000)
    const c = new StreamingChecksum('sha256')
    c.update(data.subarray(0, 1234))
    c.update(data.subarray(1234))
    expect(c.digest()).toBe(`sha256:${new Bun.CryptoHasher('sha256').update(data).digest('hex')}`)
  })
})

describe('checksumFile', () => {
  test('same size and sum with tiny and big chunks, with and without fsync', async () => {
    const data = randomBytes(3_000_001)
    const path = join(dir, 'f.bin')
    writeFileSync(path, data)
    const want = { size: data.length, sum: checksumBytes(data) }
    expect(await checksumFile(path)).toEqual(want)
    expect(await checksumFile(path, { chunkBytes: 4099, fsync: true })).toEqual(want)
    expect(await checksumFile(path, { algo: 'sha256' })).toEqual({ size: data.length, sum: checksumBytes(data, 'sha256') })
  })

  test('limit: only the first bytes, however big the file', async () => {
    const data = randomBytes(3_000_001)
    writeFileSync(join(dir, 'l.bin'), data)
    for (const limit of [0, 1, 4099, 2_500_000, 3_000_001, 9_000_000]) {
      const head = data.subarray(0, limit)
      expect(await checksumFile(join(dir, 'l.bin'), { limit, chunkBytes: 4099 })).toEqual({ size: head.length, sum: checksumBytes(head) })
    }
  })

  test('empty file', async () => {
    writeFileSync(join(dir, 'empty'), '')
    expect(await checksumFile(join(dir, 'empty'), { fsync: true })).toEqual({ size: 0, sum: 'crc32:00000000' })
  })
})

describe('helpers', () => {
  test('parseSum accepts only our formats', () => {
    expect(parseSum('crc32:0a0b0c0d')).toEqual({ algo: 'crc32', hex: '0a0b0c0d' })
    expect(parseSum(`sha256:${'a'.repeat(64)}`)?.algo).toBe('sha256')
    for (const bad of ['crc32:abc', 'crc32:0A0B0C0D', 'md5:00', 'crc32', `sha256:${'a'.repeat(63)}`, '']) expect(parseSum(bad)).toBeNull()
  })

  test('sameSum compares algorithm and value, hex case-insensitively', () => {
    expect(sameSum('crc32:0a0b0c0d', 'crc32:0A0B0C0D')).toBe(true)
    expect(sameSum('crc32:0a0b0c0d', 'crc32:0a0b0c0e')).toBe(false)
    expect(sameSum('crc32:0a0b0c0d', 'garbage')).toBe(false)
  })

  test('algoOf and the checksum parameter', () => {
    expect(algoOf('crc32:00000000')).toBe('crc32')
    expect(() => algoOf('md5:1')).toThrow(ActionableError)
    expect(checksumAlgoParam(() => undefined)).toBe('crc32')
    expect(checksumAlgoParam(() => 'sha256')).toBe('sha256')
    expect(() => checksumAlgoParam(() => 'md5')).toThrow('sstore_base_checksum is "md5"; use one of crc32, sha256')
  })
})
