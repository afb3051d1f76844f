/**
 * File checksums for snapshot integrity, written as "crc32:<8 hex>" or "sha256:<64 hex>".
 * crc32 (Bun.hash.crc32, chainable: `crc = crc32(chunk, crc)`) is the default because it runs
 * far faster than any disk; sha256 is there for stores where tampering, not only bit rot, matters.
 * Files are streamed in big chunks so a 256 MiB image never sits in memory whole.
 */
import { open } from '../util/fs-promises'
import { ActionableError } from '../errors'

export const CHECKSUM_ALGOS = ['crc32', 'sha256'] as const
export type ChecksumAlgo = (typeof CHECKSUM_ALGOS)[number]

/**
 * Read size for checksumming: big enough that per-call overhead is noise (~30 us a read, 15 ms
 * a GiB), small because seals and verifies run several files at once: 8 MiB each held 32 MB of
 * `ompx run` while 4 ranks sealed together (issue #16).
 */
export const CHUNK_BYTES = 2 * 1024 * 1024

/** Idle read buffers: a checkpoint seals many files, and a fresh buffer each is garbage. */
const idleBuffers: Buffer[] = []
const MAX_IDLE_BUFFERS = 4

/** An incremental checksum: feed chunks in order, then `digest()` once. */
export class StreamingChecksum {
  private crc = 0
  private readonly sha: Bun.CryptoHasher | null

  constructor(readonly algo: ChecksumAlgo = 'crc32') {
    if (!isChecksumAlgo(algo)) throw new Error(`unknown checksum algorithm "${algo}"`)
    this.sha = algo === 'sha256' ? new Bun.CryptoHasher('sha256') : null
  }

  update(chunk: Uint8Array): void {
    if (this.sha) this.sha.update(chunk)
    else this.crc = Bun.hash.crc32(chunk, this.crc)
  }

  digest(): string {
    if (this.sha) return `sha256:${this.sha.digest('hex')}`
    return `crc32:${(this.crc >>> 0).toString(16).padStart(8, '0')}`
  }
}

export function isChecksumAlgo(x: unknown): x is ChecksumAlgo {
  return (CHECKSUM_ALGOS as readonly unknown[]).includes(x)
}

export interface FileSum {
  size: number
  sum: string
}

/**
 * Stream `path` through the checksum. With `fsync`, the file is also flushed to disk; the fsync
 * runs concurrently with the reads (it only has to cover bytes written before it was called,
 * and reading does not write), so sealing a snapshot costs about one disk flush, not flush + read.
 */
export async function checksumFile(path: string, opts: { algo?: ChecksumAlgo; fsync?: boolean; chunkBytes?: number; limit?: number } = {}): Promise<FileSum> {
  const fh = await open(path, 'r')
  try {
    const synced = opts.fsync ? fh.sync() : Promise.resolve()
    const sum = new StreamingChecksum(opts.algo ?? 'crc32')
    // Never more than the file: seals and verifies run several files at once, mostly tiny ones.
    // `limit`: read no further (FlushAhead: a file that is still growing is not chased).
    const limit = opts.limit ?? Infinity
    const want = Math.max(1, Math.min(opts.chunkBytes ?? CHUNK_BYTES, (await fh.stat()).size + 1))
    const pooled = want === CHUNK_BYTES ? idleBuffers.pop() : undefined
    const buf = pooled ?? Buffer.allocUnsafe(want)
    let size = 0
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, limit - size), size)
        if (bytesRead === 0) break
        sum.update(buf.subarray(0, bytesRead))
        size += bytesRead
      }
    } finally {
      if (buf.length === CHUNK_BYTES && idleBuffers.length < MAX_IDLE_BUFFERS) idleBuffers.push(buf)
    }
    await synced
    return { size, sum: sum.digest() }
  } finally {
    await fh.close()
  }
}

/** Split "crc32:1a2b3c4d" into its parts; null when it is not a checksum we write. */
export function parseSum(s: string): { algo: ChecksumAlgo; hex: string } | null {
  const m = /^(crc32|sha256):([0-9a-f]+)$/.exec(s)
  if (!m) return null
  const algo = m[1] as ChecksumAlgo
  if (m[2]!.length !== (algo === 'crc32' ? 8 : 64)) return null
  return { algo, hex: m[2]! }
}

/** The algorithm a recorded checksum was made with (so verify uses the same one). */
export function algoOf(sum: string): ChecksumAlgo {
  const p = parseSum(sum)
  if (!p) throw new ActionableError(`"${sum}" is not a checksum ompx writes (expected crc32:<8 hex> or sha256:<64 hex>)`)
  return p.algo
}

/** True when both name the same algorithm and value (case-insensitive hex). */
export function sameSum(a: string, b: string): boolean {
  const pa = parseSum(a.toLowerCase())
  const pb = parseSum(b.toLowerCase())
  return pa !== null && pb !== null && pa.algo === pb.algo && pa.hex === pb.hex
}

/** The sstore_base_checksum parameter, checked. */
export function checksumAlgoParam(get: (key: string) => string | undefined): ChecksumAlgo {
  const v = (get('sstore_base_checksum') ?? '').trim() || 'crc32'
  if (!isChecksumAlgo(v)) {
    throw new ActionableError(`sstore_base_checksum is "${v}"; use one of ${CHECKSUM_ALGOS.join(', ')}`)
  }
  return v
}

export const VERIFY_MODES = ['checksum', 'size'] as const
export type VerifyMode = (typeof VERIFY_MODES)[number]

/** The sstore_base_verify parameter, checked. */
export function verifyModeParam(get: (key: string) => string | undefined): VerifyMode {
  const v = (get('sstore_base_verify') ?? '').trim() || 'checksum'
  if (!(VERIFY_MODES as readonly string[]).includes(v)) {
    throw new ActionableError(`sstore_base_verify is "${v}"; use one of ${VERIFY_MODES.join(', ')}`)
  }
  return v as VerifyMode
}
