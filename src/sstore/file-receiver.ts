/**
 * The receiving end of a snapshot file transfer: the HNP for `orted.file` (root = the rank's dir
 * in the global seq dir) and a daemon for `hnp.file` (root = its restart staging dir). Chunks are
 * applied strictly in arrival order, checksummed as they are written, and fsynced per file.
 * The peer is not trusted with paths: nothing it sends can create or write anything outside root.
 */
import { constants } from 'node:fs'
import { lstat, mkdir, open, type FileHandle } from '../util/fs-promises'
import { join } from 'node:path'
import { errorMessage } from '../errors'
import type { SnapshotFileInfo } from './types'
import { StreamingChecksum, algoOf, type ChecksumAlgo } from './checksum'
import { MAX_CHUNK_BYTES, badRelPath, decodeChunk, releaseDecoded, type FileChunk } from './chunk-codec'
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, fsyncDir, mkdirPrivate } from './durable'
import { checkReceived } from './verify'

export interface FileReceiverOptions {
  /** Checksum computed while writing (default crc32; taken from `expected` when given). */
  algo?: ChecksumAlgo
  /** When known up front: refuse any other path, or bytes beyond a file's recorded size. */
  expected?: SnapshotFileInfo[]
  maxChunkBytes?: number
}

interface OpenFile {
  fh: FileHandle
  size: number
  sum: StreamingChecksum
  /** Bytes written since the last background flush was started. */
  unflushed: number
  /** The background flush in progress, if any. */
  flushing: Promise<void> | null
}

/**
 * Start flushing a file to disk every this many bytes, in the background, while later chunks keep
 * arriving: the disk works during the transfer instead of all at once in the final fsync.
 */
const FLUSH_EVERY_BYTES = 32 * 1024 * 1024
/** Chunks inflated ahead of the one being written (each at most maxChunkBytes once inflated). */
const DECODE_AHEAD = 2

const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW

export class FileReceiver {
  private queue: { chunk: FileChunk; decoded?: Promise<Uint8Array>; resolve: () => void; reject: (e: unknown) => void }[] = []
  private pumping: Promise<void> | null = null
  private pending = 0
  private waiters: { below: number; resolve: () => void }[] = []
  private failed: Error | null = null
  private readonly files = new Map<string, OpenFile>()
  private readonly done = new Map<string, SnapshotFileInfo>()
  private readonly dirs = new Set<string>()
  private readonly expected: Map<string, SnapshotFileInfo> | null

  constructor(
    readonly rootDir: string,
    private readonly opts: FileReceiverOptions = {},
  ) {
    this.expected = opts.expected ? new Map(opts.expected.map((f) => [f.path, f])) : null
  }

  /** Bytes received but not yet written (what a throttled reader compares with its limit). */
  get pendingBytes(): number {
    return this.pending
  }

  /** Resolves once fewer than `below` bytes wait for the disk. */
  whenPendingBelow(below: number): Promise<void> {
    if (this.pending < below) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ below, resolve }))
  }

  /**
   * Queue one chunk; resolves when it is on disk (fsynced and closed if `last`). A bad chunk
   * rejects, and every later write and finish() reject with the same error: the transfer is over.
   */
  write(chunk: FileChunk): Promise<void> {
    const n = chunk.data.length
    this.pending += n
    const done = new Promise<void>((resolve, reject) => this.queue.push({ chunk, resolve, reject }))
    this.pumping ??= this.pump()
    const result = done.finally(() => {
      this.pending -= n
      this.waiters = this.waiters.filter((w) => (this.pending < w.below ? (w.resolve(), false) : true))
    })
    // A caller that fires and forgets must not crash the process on a bad chunk: the failure
    // is sticky and finish() reports it.
    result.catch(() => {})
    return result
  }

  /** Apply queued chunks in order until the queue is empty. */
  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      // Inflate the next few chunks on the thread pool while this one is written. Only a few:
      // pendingBytes counts compressed bytes, so inflating everything queued would be unbounded.
      for (const item of this.queue.slice(0, DECODE_AHEAD)) {
        item.decoded ??= decodeChunk(item.chunk.data, item.chunk.codec, this.opts.maxChunkBytes ?? MAX_CHUNK_BYTES)
        item.decoded.catch(() => {})
      }
      const item = this.queue.shift()!
      let failed: { err: unknown } | null = null
      try {
        await this.apply(item.chunk, item.decoded!)
      } catch (err) {
        failed = { err }
      }
      // Written or refused. Settling is what lets the caller reuse the chunk's buffer (a pooled
      // frame body), so not while the thread pool may still be inflating out of it; the inflated
      // copy is on disk or dropped, its buffer takes the next chunk.
      const inflated = await item.decoded!.catch(() => null)
      if (inflated && inflated !== item.chunk.data) releaseDecoded(inflated)
      if (failed) item.reject(failed.err)
      else item.resolve()
    }
    // Same synchronous turn as the empty-queue check: the next write() starts a new pump.
    this.pumping = null
  }

  /** Resolves when every queued chunk has been applied (or refused). */
  private async idle(): Promise<void> {
    while (this.pumping) await this.pumping
  }

  /** Completed files (fsynced), sorted by path. */
  received(): SnapshotFileInfo[] {
    return [...this.done.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  /**
   * Wait for every queued chunk, refuse files left half-sent, fsync the directories, and (with
   * `expected`, or the constructor's list) check every file arrived whole with its checksum.
   */
  async finish(expected?: SnapshotFileInfo[]): Promise<SnapshotFileInfo[]> {
    await this.idle()
    if (this.failed) throw this.failed
    if (this.files.size > 0) throw this.fail(new Error(`transfer ended with ${[...this.files.keys()][0]} incomplete`))
    await mkdirPrivate(this.rootDir)
    this.dirs.add(this.rootDir)
    await Promise.all([...this.dirs].map(fsyncDir))
    const want = expected ?? this.opts.expected
    if (want) await checkReceived(this.rootDir, want, this.done)
    return this.received()
  }

  /** Stop: close open files (partial files stay for the caller to remove with their dir). */
  async abort(why = 'transfer aborted'): Promise<void> {
    this.fail(new Error(why))
    await this.idle()
    await this.closeAll()
  }

  private async apply(c: FileChunk, decoded: Promise<Uint8Array>): Promise<void> {
    if (this.failed) throw this.failed
    try {
      let f = this.files.get(c.path)
      if (!f) f = await this.start(c)
      else if (c.offset !== f.size) throw new Error(`${c.path}: chunk at offset ${c.offset}, expected ${f.size}`)
      const data = await decoded
      const want = this.expected?.get(c.path)
      if (want && f.size + data.length > want.size) throw new Error(`${c.path}: more than the ${want.size} bytes recorded`)
      f.sum.update(data)
      for (let off = 0; off < data.length; ) {
        const { bytesWritten } = await f.fh.write(data, off, data.length - off, f.size + off)
        off += bytesWritten
      }
      f.size += data.length
      f.unflushed += data.length
      if (f.unflushed >= FLUSH_EVERY_BYTES && !f.flushing) {
        f.unflushed = 0
        f.flushing = f.fh.datasync().finally(() => (f.flushing = null))
        f.flushing.catch(() => {}) // the final sync reports any disk error
      }
      if (c.last) {
        this.files.delete(c.path)
        await f.flushing?.catch(() => {})
        await f.fh.sync()
        await f.fh.close()
        this.done.set(c.path, { path: c.path, size: f.size, sum: f.sum.digest() })
      }
    } catch (err) {
      throw this.fail(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** First chunk of a file: check the path, create parent dirs inside root, open without following links. */
  private async start(c: FileChunk): Promise<OpenFile> {
    const bad = badRelPath(c.path)
    if (bad) throw new Error(`refusing file path ${JSON.stringify(c.path.slice(0, 200))}: it ${bad}`)
    if (c.offset !== 0) throw new Error(`${c.path}: first chunk at offset ${c.offset}, expected 0`)
    if (this.done.has(c.path)) throw new Error(`${c.path} was sent twice`)
    if (this.expected && !this.expected.has(c.path)) throw new Error(`${c.path} is not a file of this snapshot`)
    await mkdirPrivate(this.rootDir)
    const parts = c.path.split('/')
    let dir = this.rootDir
    for (const part of parts.slice(0, -1)) {
      const parent = dir
      dir = join(dir, part)
      try {
        await mkdir(dir, { mode: PRIVATE_DIR_MODE })
        this.dirs.add(parent)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      // A pre-existing symlink here could point anywhere: only real directories are entered.
      if (!(await lstat(dir)).isDirectory()) throw new Error(`refusing file path ${c.path}: ${part} is not a directory`)
    }
    this.dirs.add(dir)
    const fh = await open(join(this.rootDir, c.path), OPEN_FLAGS, PRIVATE_FILE_MODE)
    const algo = this.opts.algo ?? (this.expected ? algoOf(this.expected.get(c.path)!.sum) : 'crc32')
    const f: OpenFile = { fh, size: 0, sum: new StreamingChecksum(algo), unflushed: 0, flushing: null }
    this.files.set(c.path, f)
    return f
  }

  private fail(err: Error): Error {
    if (!this.failed) {
      this.failed = new Error(`receiving into ${this.rootDir}: ${errorMessage(err)}`)
      void this.closeAll()
    }
    return this.failed
  }

  private async closeAll(): Promise<void> {
    const open = [...this.files.values()]
    this.files.clear()
    await Promise.all(open.map((f) => f.fh.close().catch(() => {})))
  }
}
