/**
 * Per-chunk encoding of snapshot transfers and the checks a receiver applies to what a peer
 * sends: relative paths that stay inside the target dir, and zstd chunks inflated only up to a
 * bound (a hostile or broken peer must not make us inflate a small chunk into gigabytes).
 * Both directions work in buffers that are reused (zstd-into.ts): the compressor's output in one
 * the sender gives, chunks inflated here in a small pool the receiver gives back once written.
 */
import type { ZstdOptions } from 'node:zlib'
import { zstdCompressInto, zstdDecompressInto } from './zstd-into'

/** node:zlib (and node:util) only when a zstd chunk arrives: loading them costs ~10 ms at start-up. */
function zstdDecompress(data: Uint8Array, opts: ZstdOptions): Promise<Buffer> {
  const { zstdDecompress: inflate } = require('node:zlib') as typeof import('node:zlib')
  return new Promise((resolve, reject) => inflate(data, opts, (err, out) => (err ? reject(err) : resolve(out))))
}

/** What travels for one chunk of one file (orted.file / hnp.file carry the same fields). */
export interface FileChunk {
  path: string
  offset: number
  data: Uint8Array
  codec: 'raw' | 'zstd'
  last: boolean
}

/** Chunks sent by sendFiles: 4 MiB is large enough to amortise per-message costs on every hop. */
export const TRANSFER_CHUNK_BYTES = 4 * 1024 * 1024
/** Largest chunk a receiver accepts (raw or decompressed). */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024

/**
 * Why `path` may not be written under a root dir, or null when it may: relative posix paths of
 * plain names only, so joining it to the root can never leave the root.
 */
export function badRelPath(path: string): string | null {
  if (typeof path !== 'string' || path === '') return 'is empty'
  if (path.length > 4096) return 'is too long'
  if (path.includes('\0')) return 'contains a NUL byte'
  if (path.startsWith('/')) return 'is absolute'
  if (path.includes('\\')) return 'contains a backslash'
  for (const part of path.split('/')) {
    if (part === '') return 'has an empty component'
    if (part === '.' || part === '..') return `has a "${part}" component`
    if (part.length > 255) return 'has a component longer than 255 bytes'
  }
  return null
}

/**
 * Compress with zstd into the buffer `takeOut` gives (at least `data.length` bytes; asked for
 * once a compressor is free) when that makes the chunk smaller; otherwise send it raw.
 */
export async function encodeChunk(data: Uint8Array, level: number, takeOut: () => Uint8Array): Promise<{ data: Uint8Array; codec: 'raw' | 'zstd' }> {
  if (data.length === 0) return { data, codec: 'raw' }
  let out: Uint8Array | null = null
  const n = await zstdCompressInto(data, () => (out = takeOut()).subarray(0, data.length), level)
  return n === null ? { data, codec: 'raw' } : { data: out!.subarray(0, n), codec: 'zstd' }
}

/** Inflate buffers: a whole transfer chunk and the byte that tells a frame holding more. */
const INFLATE_CAPACITY = TRANSFER_CHUNK_BYTES + 4096
/** Idle ones: two chunks inflated ahead for each of four ranks received at once. */
const MAX_IDLE_INFLATE = 8
const idleInflate: Uint8Array[] = []
const inflated = new WeakMap<ArrayBufferLike, Uint8Array>()

/** Give back what decodeChunk returned once it is written (a raw chunk or a bigger one: nothing happens). */
export function releaseDecoded(decoded: Uint8Array): void {
  const base = inflated.get(decoded.buffer)
  if (!base) return
  inflated.delete(decoded.buffer)
  if (idleInflate.length < MAX_IDLE_INFLATE) idleInflate.push(base)
}

/** Inflate into a pooled buffer when the frame declares a size that fits; null otherwise. */
async function inflatePooled(data: Uint8Array, maxBytes: number): Promise<Uint8Array | null> {
  const base = idleInflate.pop() ?? new Uint8Array(INFLATE_CAPACITY)
  let n: number | null = null
  try {
    n = await zstdDecompressInto(data, base.subarray(0, Math.min(base.length, maxBytes + 1)))
  } finally {
    if (n === null && idleInflate.length < MAX_IDLE_INFLATE) idleInflate.push(base)
  }
  if (n === null) return null
  inflated.set(base.buffer, base)
  return base.subarray(0, n)
}

/** Decode a received chunk; throws Error with the reason when it is not acceptable. */
export async function decodeChunk(data: Uint8Array, codec: 'raw' | 'zstd', maxBytes = MAX_CHUNK_BYTES): Promise<Uint8Array> {
  if (codec === 'raw') {
    if (data.length > maxBytes) throw new Error(`chunk of ${data.length} bytes exceeds ${maxBytes}`)
    return data
  }
  try {
    // maxOutputLength stops inflating at the limit (Bun.zstdDecompress has no such bound, and a
    // few bytes of crafted frames can expand to gigabytes).
    return (await inflatePooled(data, maxBytes)) ?? (await zstdDecompress(data, { maxOutputLength: maxBytes }))
  } catch (err) {
    throw new Error(`bad zstd chunk (${(err as Error).message})`)
  }
}
