/**
 * The sending end of a snapshot file transfer (stage store push, restart staging). Each file is
 * read in 4 MiB chunks, optionally zstd-compressed per chunk on the thread pool, and handed to
 * the sink, whose promise is the flow control. The next chunks are read (and compressed) while
 * the current one is in flight, so disk, CPU and network overlap; at most four are in memory,
 * in buffers reused from chunk to chunk (no garbage per chunk for the collector to find late).
 */
import { open, type FileHandle } from '../util/fs-promises'
import { join } from 'node:path'
import { ActionableError } from '../errors'
import type { SnapshotFileInfo, SnapshotSink } from './types'
import { TRANSFER_CHUNK_BYTES, encodeChunk, type FileChunk } from './chunk-codec'

export interface SendOptions {
  compress?: 'none' | 'zstd'
  /** zstd level (1 fastest .. 19); default 3. */
  level?: number
  chunkBytes?: number
  /** Chunks read (and compressed) ahead of the one being sent; default 1 raw, 3 with zstd. */
  readAhead?: number
}

export interface SendStats {
  files: number
  /** File bytes sent (before compression). */
  bytes: number
  /** Bytes handed to the sink (after compression). */
  wireBytes: number
}

/** Send `files` (paths relative to `dir`, as in the rank's metadata) through `sink`. */
export async function sendFiles(dir: string, files: SnapshotFileInfo[], sink: SnapshotSink, opts: SendOptions = {}): Promise<SendStats> {
  const stats: SendStats = { files: 0, bytes: 0, wireBytes: 0 }
  for (const f of files) {
    const fh = await openRecorded(dir, f)
    try {
      await sendOne(fh, f, sink, opts, stats)
    } finally {
      await fh.close()
    }
    stats.files++
  }
  return stats
}

/** Open a file of the snapshot and make sure it still has the size that was sealed. */
async function openRecorded(dir: string, f: SnapshotFileInfo): Promise<FileHandle> {
  let fh: FileHandle
  try {
    fh = await open(join(dir, f.path), 'r')
  } catch (err) {
    throw new ActionableError(`cannot send ${join(dir, f.path)}: ${(err as Error).message}`)
  }
  const { size } = await fh.stat()
  if (size !== f.size) {
    await fh.close()
    throw new ActionableError(`${join(dir, f.path)} changed after the snapshot was sealed (${f.size} bytes recorded, ${size} now)`)
  }
  return fh
}

/**
 * Chunks all transfers of this process hold at once (being read, compressed, or in flight): the
 * ranks of a node push together, and each reading ahead on its own (3 zstd chunks plus their
 * compressed copies) took `ompx run` past 300 MB on a 1 GiB checkpoint of 4 ranks (issue #16).
 * Four keep two cores compressing; more only costs memory.
 */
const MAX_CHUNKS_IN_MEMORY = 4
/** Idle buffers kept: a chunk being compressed holds two. */
const MAX_IDLE_BUFFERS = 2 * MAX_CHUNKS_IN_MEMORY
let chunksInMemory = 0
const slotWaiters: (() => void)[] = []

async function takeSlot(): Promise<void> {
  if (chunksInMemory < MAX_CHUNKS_IN_MEMORY) {
    chunksInMemory++
    return
  }
  await new Promise<void>((resolve) => slotWaiters.push(resolve)) // handed over by giveSlot
}

/** Idle read buffers of every transfer of this process, by size (see sendOne). */
const idleReads = new Map<number, Buffer[]>()

function giveSlot(): void {
  const next = slotWaiters.shift()
  if (next) next()
  else chunksInMemory--
}

async function sendOne(fh: FileHandle, f: SnapshotFileInfo, sink: SnapshotSink, opts: SendOptions, stats: SendStats): Promise<void> {
  const chunkBytes = opts.chunkBytes ?? TRANSFER_CHUNK_BYTES
  const level = opts.level ?? 3
  const zstd = opts.compress === 'zstd'
  const depth = Math.max(1, opts.readAhead ?? (zstd ? 3 : 1))

  // Read buffers to reuse: JavaScriptCore collects big dead buffers late, so a fresh one per
  // chunk left hundreds of MB behind per GiB sent. zstd compresses into another buffer of the
  // same pool (zstd-into.ts), and whichever of the two is not sent is free at once. The one sent
  // is free once the sink's write resolved if the sink lets go of `data` then
  // (sink.releasesData). Only full-size buffers are kept: the last chunk is shorter.
  // The pool is the process's, not this file's: ranks sending together share a few buffers.
  const pool = idleReads.get(chunkBytes) ?? []
  idleReads.set(chunkBytes, pool)
  const recycle = (b: Buffer) => {
    if (b.byteLength === chunkBytes && pool.length < MAX_IDLE_BUFFERS) pool.push(b)
  }
  const prepare = async (offset: number): Promise<FileChunk & { whole: Buffer | null }> => {
    await takeSlot()
    try {
      return await readChunk(offset)
    } catch (err) {
      giveSlot()
      throw err
    }
  }
  const readChunk = async (offset: number): Promise<FileChunk & { whole: Buffer | null }> => {
    const len = Math.min(chunkBytes, f.size - offset)
    const whole = pool.pop() ?? Buffer.allocUnsafe(len)
    const buf = whole.subarray(0, len)
    for (let got = 0; got < len; ) {
      const { bytesRead } = await fh.read(buf, got, len - got, offset + got)
      if (bytesRead === 0) throw new ActionableError(`${f.path} shrank while it was being sent`)
      got += bytesRead
    }
    const last = offset + len >= f.size
    if (!zstd) return { path: f.path, offset, data: buf, codec: 'raw', last, whole }
    let out: Buffer | null = null // taken once a compressor is free, not while waiting for one
    const enc = await encodeChunk(buf, level, () => (out = pool.pop() ?? Buffer.allocUnsafe(len)))
    const sent = enc.codec === 'zstd' ? out! : whole
    if (out) recycle(sent === out ? whole : out) // the one not sent is free at once
    return { path: f.path, offset, data: enc.data, codec: enc.codec, last, whole: sent }
  }

  // Chunks being read (and compressed) ahead of the one in flight: compression runs on the
  // thread pool, so with zstd a few at once keep every core busy.
  const offsets: number[] = []
  for (let o = 0; o < f.size || (o === 0 && f.size === 0); o += chunkBytes) offsets.push(o)
  const ahead: Promise<FileChunk & { whole: Buffer | null }>[] = []
  const fill = () => {
    while (ahead.length < depth && offsets.length > 0) {
      const p = prepare(offsets.shift()!)
      p.catch(() => {}) // awaited in order below; not unhandled meanwhile
      ahead.push(p)
    }
  }
  try {
    for (fill(); ahead.length > 0; ) {
      const c = await ahead.shift()! // a chunk that failed to read gave its slot back
      fill()
      try {
        await sink.write(c.path, c.offset, c.data, c.codec, c.last)
      } finally {
        giveSlot()
      }
      if (c.whole && sink.releasesData) recycle(c.whole)
      stats.bytes += Math.min(chunkBytes, f.size - c.offset)
      stats.wireBytes += c.data.length
    }
  } finally {
    // A failed transfer: the chunks read ahead give their slots back once read.
    for (const p of ahead.splice(0)) p.then(giveSlot, () => {})
  }
}
