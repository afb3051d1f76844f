/**
 * zstd into buffers the caller owns. Bun.zstdCompress and node:zlib's zstdDecompress return a
 * fresh buffer per 4 MiB chunk, garbage the moment it is sent or written, and JavaScriptCore
 * collects such big buffers late: the stage store either sat on hundreds of MB of them or paid
 * for forced collections (issue #16). node:zlib's zstd streams run on a native handle whose
 * `write` compresses on the thread pool into an output buffer we pass in; we drive such handles
 * directly, one chunk per write, so the chunk's bytes land in a pooled buffer.
 *
 * That handle is not a public API: when it is missing (another runtime, another Bun), the
 * one-shot functions are used and their output copied, correct but with the old garbage.
 */
import type * as Zlib from 'node:zlib'

/** What node:zlib's native zstd handle offers (Bun's NativeZstd, Node's binding.Zstd). */
interface ZstdHandle {
  init(params: Uint32Array, pledgedSrcSize: undefined, writeState: Uint32Array, done: () => void): void
  write(flush: number, src: Uint8Array, srcOff: number, srcLen: number, out: Uint8Array, outOff: number, outLen: number): void
  reset(): void
  close(): void
  onerror?: (message: string, code: number) => void
}

/** A handle, its [avail out, avail in] after a write, and the write in progress. */
interface Engine {
  handle: ZstdHandle
  state: Uint32Array
  settle: ((err?: Error) => void) | null
}

/** node:zlib only when the first zstd chunk comes: loading it costs ~10 ms at start-up. */
const zlib = (): typeof Zlib => require('node:zlib') as typeof Zlib
let native: (new (mode: number) => ZstdHandle) | null | undefined

function nativeHandle(): (new (mode: number) => ZstdHandle) | null {
  if (native !== undefined) return native
  try {
    const s = zlib().createZstdDecompress() as unknown as { _handle?: { constructor?: unknown; write?: unknown } }
    const ctor = s._handle?.constructor
    native = typeof ctor === 'function' && typeof s._handle?.write === 'function' ? (ctor as new (mode: number) => ZstdHandle) : null
    ;(s as unknown as { destroy(): void }).destroy()
  } catch {
    native = null
  }
  return native
}

/** Idle engines by kind ("d" or "c<level>"): one per chunk being (de)compressed at once. */
const idle = new Map<string, Engine[]>()
const MAX_IDLE_PER_KIND = 2
/**
 * Chunks (de)compressed at once in this process: one per core keeps them busy, and each engine
 * holds ~4 MB outside the JS heap (a 4 MiB window): four on 2 cores cost 8 MB for nothing.
 */
const MAX_RUNNING = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2))
let running = 0
const queued: (() => void)[] = []
/** A compressor holds ~4 MB outside the JS heap: a daemon does not keep them between checkpoints. */
const CLOSE_IDLE_AFTER_MS = 2000
let lastUse = 0
let sweeper: ReturnType<typeof setTimeout> | null = null

/** Close the idle engines once none was used for CLOSE_IDLE_AFTER_MS. */
function sweepLater(delay = CLOSE_IDLE_AFTER_MS): void {
  sweeper ??= setTimeout(() => {
    sweeper = null
    const quiet = performance.now() - lastUse
    if (quiet < CLOSE_IDLE_AFTER_MS) return sweepLater(CLOSE_IDLE_AFTER_MS - quiet)
    for (const pool of idle.values()) for (const e of pool.splice(0)) e.handle.close()
  }, delay).unref()
}

function makeEngine(ctor: new (mode: number) => ZstdHandle, compress: boolean, level: number): Engine {
  const { constants: k } = zlib() as unknown as { constants: Record<string, number> }
  const prefix = compress ? 'ZSTD_c_' : 'ZSTD_d_'
  const max = Math.max(...Object.keys(k).map((n) => (n.startsWith(prefix) ? k[n]! : 0)))
  const params = new Uint32Array(max + 1).fill(0xffffffff) // all unset ...
  if (compress) params[k.ZSTD_c_compressionLevel!] = level // ... but the level
  const e: Engine = { handle: new ctor(compress ? k.ZSTD_COMPRESS! : k.ZSTD_DECOMPRESS!), state: new Uint32Array(2), settle: null }
  e.handle.onerror = (message) => e.settle?.(new Error(message))
  e.handle.init(params, undefined, e.state, () => e.settle?.())
  return e
}

/** An output buffer, or how to get one once the work starts (no buffer is held while queued). */
type Out = Uint8Array | (() => Uint8Array)
const outOf = (out: Out): Uint8Array => (typeof out === 'function' ? out() : out)

/**
 * One whole-frame write of `src` into `out` on the thread pool. Resolves to [bytes written,
 * input left over, room there was]; rejects with zstd's message on bad input. Null: no native handle.
 */
async function run(compress: boolean, level: number, src: Uint8Array, out: Out): Promise<[number, number, number] | null> {
  const ctor = nativeHandle()
  if (!ctor) return null
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => queued.push(resolve))
  else running++
  try {
    return await runOn(ctor, compress, level, src, out)
  } finally {
    const next = queued.shift()
    if (next) next() // the slot passes on
    else running--
  }
}

async function runOn(ctor: new (mode: number) => ZstdHandle, compress: boolean, level: number, src: Uint8Array, outArg: Out): Promise<[number, number, number]> {
  const out = outOf(outArg)
  const kind = compress ? `c${level}` : 'd'
  const pool = idle.get(kind) ?? []
  idle.set(kind, pool)
  const e = pool.pop() ?? makeEngine(ctor, compress, level)
  try {
    await new Promise<void>((resolve, reject) => {
      e.settle = (err) => (err ? reject(err) : resolve())
      e.handle.write(zlib().constants.ZSTD_e_end, src, 0, src.length, out, 0, out.length)
    })
  } catch (err) {
    e.handle.close() // an engine that failed is not trusted with the next chunk
    throw err
  } finally {
    e.settle = null
  }
  const result: [number, number, number] = [out.length - e.state[0]!, e.state[1]!, out.length]
  e.handle.reset()
  if (pool.length < MAX_IDLE_PER_KIND) pool.push(e)
  else e.handle.close()
  lastUse = performance.now()
  sweepLater()
  return result
}

/**
 * Compress `src` as one zstd frame into `out` (or what it returns, called once a compressor is
 * free). Resolves to the frame's length, or null when it does not fit (give it `src.length`
 * bytes: a frame that big is not worth sending).
 */
export async function zstdCompressInto(src: Uint8Array, out: Out, level: number): Promise<number | null> {
  const r = await run(true, level, src, out)
  if (r) return r[0] < r[2] ? r[0] : null // a full buffer may have cut the frame short
  const z = await Bun.zstdCompress(src, { level })
  const into = outOf(out)
  if (z.length >= into.length) return null
  into.set(z)
  return z.length
}

/**
 * The decompressed size a zstd frame header declares, or null when it declares none (or `src`
 * is not a zstd frame). Our senders always declare it: the whole chunk is one ZSTD_e_end write.
 */
function declaredSize(src: Uint8Array): number | null {
  if (src.length < 6 || src[0] !== 0x28 || src[1] !== 0xb5 || src[2] !== 0x2f || src[3] !== 0xfd) return null
  const desc = src[4]!
  const fcsFlag = desc >> 6
  const single = (desc >> 5) & 1
  if (fcsFlag === 0 && !single) return null
  let at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][desc & 3]!
  const size = fcsFlag === 0 ? 1 : fcsFlag === 1 ? 2 : fcsFlag === 2 ? 4 : 8
  if (src.length < at + size) return null
  const view = new DataView(src.buffer, src.byteOffset + at, size)
  if (size === 1) return view.getUint8(0)
  if (size === 2) return view.getUint16(0, true) + 256
  if (size === 4) return view.getUint32(0, true)
  const big = view.getBigUint64(0, true)
  return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big)
}

/**
 * Decompress one zstd frame into `out`. Resolves to the decompressed length, or null when this
 * cannot be done here (no declared size, not smaller than `out`, no native handle): the caller then
 * inflates the ordinary way. Rejects on corrupt data, a frame cut short or trailing bytes.
 */
export async function zstdDecompressInto(src: Uint8Array, out: Uint8Array): Promise<number | null> {
  const want = declaredSize(src)
  if (want === null || want >= out.length) return null
  const r = await run(false, 0, src, out.subarray(0, Math.min(out.length, want + 1)))
  if (!r) return null
  if (r[0] !== want) throw new Error(`frame declares ${want} bytes, holds ${r[0]}`)
  if (r[1] !== 0) throw new Error(`${r[1]} bytes after the frame`)
  return want
}
