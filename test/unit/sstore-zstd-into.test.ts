/**
 * zstd into caller-owned buffers (src/sstore/zstd-into.ts) and the chunk codec's inflate pool
 * (src/sstore/chunk-codec.ts): round trips, incompressible chunks, and every way a received
 * frame can be wrong (cut short, trailing bytes, corrupt, no declared size, too big) is refused
 * or handed to the bounded fallback, never written as if it were whole.
 */
import { describe, expect, test } from 'bun:test'
import { zstdCompressInto, zstdDecompressInto } from '../../src/sstore/zstd-into'
import { decodeChunk, encodeChunk, releaseDecoded, TRANSFER_CHUNK_BYTES } from '../../src/sstore/chunk-codec'

const MiB = 1024 * 1024

/** Compressible but not trivial: a repeating pattern with a slowly changing key. */
function pattern(len: number): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) b[i] = ((i * 7) % 251) ^ (i >> 12)
  return b
}

function random(len: number): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(len, i + 65536)))
  return b
}

describe('zstd-into', () => {
  test('compress into a buffer, decompress into another: same bytes, and the engines are reused', async () => {
    const src = pattern(4 * MiB)
    const z = new Uint8Array(src.length)
    const out = new Uint8Array(src.length + 1)
    for (let round = 0; round < 3; round++) {
      const n = await zstdCompressInto(src, z, 3)
      expect(n).not.toBeNull()
      expect(n!).toBeLessThan(src.length / 10)
      expect(Buffer.from(Bun.zstdDecompressSync(z.subarray(0, n!))).equals(src)).toBe(true) // a standard frame
      const m = await zstdDecompressInto(z.subarray(0, n!), out)
      expect(m).toBe(src.length)
      expect(Buffer.from(out.subarray(0, m!)).equals(src)).toBe(true)
    }
  })

  test('chunks (de)compressed at once do not mix', async () => {
    const srcs = [0, 1, 2, 3].map((k) => pattern(MiB).map((x) => x ^ k))
    const zs = await Promise.all(srcs.map(async (s) => { const z = new Uint8Array(s.length); return z.subarray(0, (await zstdCompressInto(s, z, 1))!) }))
    const outs = await Promise.all(zs.map(async (z) => { const o = new Uint8Array(MiB + 1); return o.subarray(0, (await zstdDecompressInto(z, o))!) }))
    outs.forEach((o, k) => expect(Buffer.from(o).equals(srcs[k]!)).toBe(true))
  })

  test('an incompressible chunk does not fit: null, so it goes raw', async () => {
    const src = random(MiB)
    expect(await zstdCompressInto(src, new Uint8Array(src.length), 3)).toBeNull()
  })

  test('a frame cut short, trailing bytes and corrupt frames are refused', async () => {
    const src = pattern(MiB)
    const z = Bun.zstdCompressSync(src)
    const out = new Uint8Array(MiB + 4096)
    await expect(zstdDecompressInto(z.subarray(0, z.length - 10), out)).rejects.toThrow(/declares 1048576 bytes, holds/)
    await expect(zstdDecompressInto(Buffer.concat([z, z]), out)).rejects.toThrow()
    const bad = Buffer.from(z)
    bad.fill(0xff, 12, 40) // the first block's header and what follows
    await expect(zstdDecompressInto(bad, out)).rejects.toThrow()
    // The engine that failed is dropped; the next frame still decodes.
    expect(await zstdDecompressInto(z, out)).toBe(MiB)
  })

  test('no declared size, not zstd, or bigger than the buffer: null (the caller inflates with a bound)', async () => {
    const z = Bun.zstdCompressSync(pattern(MiB))
    expect(await zstdDecompressInto(z, new Uint8Array(MiB))).toBeNull() // needs one byte more than declared
    expect(await zstdDecompressInto(new TextEncoder().encode('not a zstd frame'), new Uint8Array(100))).toBeNull()
    const noSize = Buffer.from(z)
    noSize[4] = noSize[4]! & 0x3f & ~0x20 // descriptor: no content size, not single-segment
    expect(await zstdDecompressInto(noSize, new Uint8Array(2 * MiB))).toBeNull()
  })
})

describe('chunk codec buffers', () => {
  test('encodeChunk compresses into the buffer given, or leaves the chunk raw', async () => {
    const src = pattern(TRANSFER_CHUNK_BYTES)
    const out = new Uint8Array(TRANSFER_CHUNK_BYTES)
    const enc = await encodeChunk(src, 3, () => out)
    expect(enc.codec).toBe('zstd')
    expect(enc.data.buffer === out.buffer).toBe(true)
    expect(Buffer.from(Bun.zstdDecompressSync(enc.data)).equals(src)).toBe(true)
    const rnd = random(MiB)
    expect(await encodeChunk(rnd, 3, () => out)).toEqual({ data: rnd, codec: 'raw' })
  })

  test('an inflated chunk keeps its buffer until released; then the next chunk gets it', async () => {
    const src = pattern(TRANSFER_CHUNK_BYTES)
    const z = Bun.zstdCompressSync(src)
    const a = await decodeChunk(z, 'zstd')
    const b = await decodeChunk(z, 'zstd')
    expect(a.buffer).not.toBe(b.buffer) // a is not written yet: b may not overwrite it
    expect(Buffer.from(a).equals(src) && Buffer.from(b).equals(src)).toBe(true)
    releaseDecoded(a)
    releaseDecoded(a) // twice: the buffer is not pooled twice
    const c = await decodeChunk(z, 'zstd')
    const d = await decodeChunk(z, 'zstd')
    expect(c.buffer).toBe(a.buffer)
    expect(d.buffer).not.toBe(a.buffer)
    for (const x of [b, c, d]) releaseDecoded(x)
  })

  test('a raw chunk is passed through and never pooled', async () => {
    const raw = random(1000)
    const got = await decodeChunk(raw, 'raw')
    expect(got).toBe(raw)
    releaseDecoded(got) // not ours: nothing happens
    const z = Bun.zstdCompressSync(pattern(MiB))
    expect((await decodeChunk(z, 'zstd')).buffer).not.toBe(raw.buffer)
  })
})
