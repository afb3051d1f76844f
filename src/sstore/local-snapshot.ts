/**
 * One rank's local snapshot: the directory the CRS filled, sealed by the node daemon right after
 * capture. Sealing checksums and fsyncs every file, fsyncs the directories, and writes ompx-rank.json
 * last, so a rank dir with a ompx-rank.json is complete on disk. The HNP still trusts only global.json.
 */
import { chmod, lstat, readFile, readdir, rm } from '../util/fs-promises'
import { join } from 'node:path'
import { ActionableError, errorMessage } from '../errors'
import type { SnapshotFileInfo } from './types'
import { algoOf, checksumFile, type ChecksumAlgo } from './checksum'
import type { Presealed } from './flush-ahead'
import { fsyncDir, mkdirPrivate, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, toJson, writeFileAtomic } from './durable'
import { RANK_META, type RankMeta } from './types'

/** What the daemon knows about a capture before the files are looked at. */
export type RankBase = Pick<RankMeta, 'rank' | 'node' | 'crs' | 'captureMs' | 'info' | 'outputTail'>

/**
 * Create `dir` (0700) for a capture and make sure it is empty: anything already there is the
 * leftover of an interrupted attempt at the same seq and must not end up in the snapshot.
 */
export async function prepareRankDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  await mkdirPrivate(dir)
}

/**
 * Every regular file under `dir` as a posix path relative to it, sorted, plus every directory
 * (for fsync). Symlinks, devices, sockets and fifos are refused: a snapshot must be plain bytes
 * that can be checksummed, copied and restored anywhere.
 */
export async function listSnapshotFiles(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = []
  const dirs: string[] = [dir]
  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? join(dir, rel) : dir
    for (const e of await readdir(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) {
        dirs.push(join(dir, r))
        await walk(r)
      } else if (e.isFile()) {
        if (r !== RANK_META) files.push(r)
      } else {
        const what = e.isSymbolicLink() ? 'a symlink' : 'not a regular file (device, socket or fifo)'
        throw new ActionableError(`local snapshot ${dir}: ${r} is ${what}; a snapshot may hold only regular files and directories`)
      }
    }
  }
  await walk('')
  // Plain code-unit order (not locale order): the same on every node and in every language.
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return { files, dirs }
}

/** Files sealed at once per rank dir (see sealRankDir). */
const SEAL_CONCURRENCY = 8

/**
 * Seal a captured rank dir: checksum + fsync every file, fsync every directory, then write
 * ompx-rank.json (not listed in its own `files`). Returns the metadata the daemon reports to the HNP.
 * A file FlushAhead already sealed (`ahead`) is taken as is while it is still the same inode,
 * size and mtime; any other is read again.
 */
export async function sealRankDir(dir: string, base: RankBase, algo: ChecksumAlgo = 'crc32', ahead?: Presealed): Promise<RankMeta> {
  let listing: Awaited<ReturnType<typeof listSnapshotFiles>>
  try {
    if (!(await lstat(dir)).isDirectory()) throw new Error('not a directory')
    listing = await listSnapshotFiles(dir)
  } catch (err) {
    if (err instanceof ActionableError) throw err
    throw new ActionableError(`cannot read local snapshot ${dir}: ${errorMessage(err)}`)
  }
  // Apps write with their umask; a snapshot holds their state and is the user's alone.
  await Promise.all(listing.dirs.map((d) => chmod(d, PRIVATE_DIR_MODE)))
  // Several files at once: a criu image dir is ~20 files, mostly tiny, and one fsync after
  // another would each wait for their own journal commit; concurrent ones share commits.
  const files: SnapshotFileInfo[] = new Array(listing.files.length)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < listing.files.length; i = next++) {
      const path = listing.files[i]!
      await chmod(join(dir, path), PRIVATE_FILE_MODE)
      files[i] = (await presealed(join(dir, path), path, algo, ahead)) ?? { path, ...(await checksumFile(join(dir, path), { algo, fsync: true })) }
    }
  }
  await Promise.all(Array.from({ length: Math.min(SEAL_CONCURRENCY, listing.files.length) }, worker))
  const bytes = files.reduce((n, f) => n + f.size, 0)
  // Deepest first is not needed for durability; every directory just has to be flushed once.
  await Promise.all(listing.dirs.map(fsyncDir))
  const meta: RankMeta = { rank: base.rank, node: base.node, crs: base.crs, files, bytes, captureMs: base.captureMs }
  if (base.info !== undefined) meta.info = base.info
  if (base.outputTail !== undefined) meta.outputTail = base.outputTail
  await writeRankMeta(dir, meta)
  return meta
}

/** `ahead`'s result for `path` when the file is still exactly what it was sealed as; else null. */
async function presealed(abs: string, path: string, algo: ChecksumAlgo, ahead?: Presealed): Promise<SnapshotFileInfo | null> {
  const p = ahead?.get(path)
  if (!p || algoOf(p.sum) !== algo) return null
  const st = await lstat(abs, { bigint: true })
  return st.ino === p.ino && st.size === p.size && st.mtimeNs === p.mtimeNs ? { path, size: Number(p.size), sum: p.sum } : null
}

/** Write (atomically) a rank dir's ompx-rank.json; the HNP uses it for rank dirs it received. */
export async function writeRankMeta(dir: string, meta: RankMeta): Promise<void> {
  await writeFileAtomic(join(dir, RANK_META), toJson(meta))
}

/** Read a rank dir's ompx-rank.json; null when there is none (an unsealed or interrupted capture). */
export async function readRankMeta(dir: string): Promise<RankMeta | null> {
  const path = join(dir, RANK_META)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  try {
    return JSON.parse(text) as RankMeta
  } catch {
    throw new ActionableError(`${path} is not valid JSON: the local snapshot is damaged`)
  }
}
