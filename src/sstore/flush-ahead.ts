/**
 * Flush-ahead: seal a rank dir's files while the CRS is still writing the others. criu writes its
 * images one after another (pages-*.img, the big ones, first), so by the time the dump ends most
 * files have long been complete; checksumming and fsyncing them then, after criu exits, put the
 * whole disk flush after the dump instead of beside it (issue #16: 1.33x of `criu dump` + `sync`).
 *
 * A file is taken once it has been quiet: its mtime at least QUIET_MS old when we stat it just
 * before reading. The kernel stamps mtime when a write() starts, not when it ends, so one long
 * write (Bun.write of 9 MiB: fallocate, then a single pwrite, on a loaded machine) can look quiet
 * while its bytes are still arriving; a chmod (to the mode the seal gives the file anyway) takes
 * the inode lock that every write() and splice() into the file holds for its whole length, so
 * once it returns no write that began before our stat is still under way. Any write after that
 * stat gets a newer mtime (multigrain timestamps: a stamp that was looked at is never reused), so
 * sealRankDir reuses a result only when the file's inode, size and mtime are still those of that
 * stat: a file written to again is sealed from scratch, and the snapshot's checksums and
 * durability are exactly what a seal after the capture gives. Only a CRS that declares
 * `writesImagesOnce` gets a flush-ahead (criu: writes through write()/splice(), never mmap).
 * Never an fsync of a file still being written: criu writes pages-*.img while pagemap-*.img
 * grows, and an fsync racing those writes stalled the dumps (4 x 256 MiB: 1.5 s became 7 s).
 */
import { chmod, lstat, readdir } from '../util/fs-promises'
import { join } from 'node:path'
import { checksumFile, type ChecksumAlgo } from './checksum'
import { PRIVATE_FILE_MODE } from './durable'
import { RANK_META } from './types'

/** How often the dir is looked at, and how long a file must have been left alone to be taken. */
const POLL_MS = 15
const QUIET_MS = 30
/** Files read + fsynced at once: concurrent fsyncs share journal commits. */
const CONCURRENCY = 4

/** A file sealed ahead: its checksum, valid while the file still has this inode, size and mtime. */
export interface PresealedFile {
  ino: bigint
  size: bigint
  mtimeNs: bigint
  sum: string
}

export type Presealed = ReadonlyMap<string, PresealedFile>

export class FlushAhead {
  private readonly done = new Map<string, PresealedFile>()
  /** Names in the order they were first seen (criu's writing order). */
  private readonly seen: string[] = []
  private readonly busy = new Set<string>()
  private readonly running = new Set<Promise<void>>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private polling: Promise<void> | null = null
  private stopped = false

  constructor(
    private readonly dir: string,
    private readonly algo: ChecksumAlgo,
  ) {
    this.schedule()
  }

  /** Stop looking, wait for what is under way; the results, for sealRankDir. Idempotent. */
  async stop(): Promise<Presealed> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.polling
    while (this.running.size) await Promise.all(this.running)
    return this.done
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = null
        this.schedule()
      })
    }, POLL_MS)
  }

  private async poll(): Promise<void> {
    let names: string[]
    try {
      names = (await readdir(this.dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name !== RANK_META).map((e) => e.name)
    } catch {
      return // not there yet, or removed (an abandoned capture): nothing to do
    }
    for (const n of names) if (!this.seen.includes(n)) this.seen.push(n)
    const now = Date.now()
    for (let i = 0; i < this.seen.length && !this.stopped; i++) {
      const name = this.seen[i]!
      if (this.done.has(name) || this.busy.has(name) || this.busy.size >= CONCURRENCY) continue
      const st = await lstat(join(this.dir, name), { bigint: true }).catch(() => null)
      if (!st) continue
      if (Number(st.mtimeNs / 1_000_000n) < now - QUIET_MS) this.run(name, () => this.seal(name))
    }
  }

  private run(name: string, job: () => Promise<void>): void {
    this.busy.add(name)
    const p: Promise<void> = job()
      .catch(() => {}) // whatever failed here is done again by the seal
      .finally(() => {
        this.busy.delete(name)
        this.running.delete(p)
      })
    this.running.add(p)
  }

  private async seal(name: string): Promise<void> {
    const path = join(this.dir, name)
    // The stat the result is valid for, taken before reading; quiet again, or it proves nothing.
    const before = await lstat(path, { bigint: true })
    if (!before.isFile() || Number(before.mtimeNs / 1_000_000n) >= Date.now() - QUIET_MS) return
    // The barrier: waits out a write() begun before `before` (it holds the inode lock throughout).
    await chmod(path, PRIVATE_FILE_MODE)
    // Only the bytes it had then: a CRS that merely paused (a loaded machine) is not chased.
    const { size, sum } = await checksumFile(path, { algo: this.algo, fsync: true, limit: Number(before.size) })
    if (size === Number(before.size)) this.done.set(name, { ino: before.ino, size: before.size, mtimeNs: before.mtimeNs, sum })
  }
}
