/**
 * The file half of a crs criu restore (docs/criu.md, "Files the rank writes"), run before criu
 * restores the tree: every file the capture copied is put back at its path with its mode, owner,
 * size and mtime; every file only recorded is compared with what is there now, and each one that
 * changed or vanished gives one warning line, shown on the rank's stderr ahead of its output.
 *
 * The manifest comes from a snapshot, so it is checked before anything is written (files-spec.ts)
 * and nothing is written but the recorded paths: a path through a symlink anyone but root (or
 * us) could have planted, or onto anything but a regular file, is refused. A file goes back by
 * copy to a new file beside it and a rename, so a restart that fails half-way never leaves it
 * half-written. Ranks of one job on one node that share a file put it back once, so both map
 * the same inode again.
 */
import { chmodSync, chownSync, constants, copyFileSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { untrusted } from '../../../src/log'
import { checkManifest, COPY_DIR, FILES_MANIFEST, OPEN_WORD, type FileEntry } from './files-spec'

export interface FilesRestore {
  /** The rank's image dir (read only). */
  dir: string
  jobid: string
  rank: number
  node: string
}

export interface FilesRestored {
  /** One line per recorded file that changed or vanished since the checkpoint. */
  warnings: string[]
  /** Paths of those files, for the message of a restore that then fails. */
  changed: string[]
}

const isRoot = () => process.getuid?.() === 0

/**
 * Whether a symlink on the way to a recorded path may be followed: only one that root (or we)
 * made, in a directory only its owner may write to (/var/run -> /run, not a link left in /tmp).
 */
function trustedLink(link: string): boolean {
  const mine = (uid: number) => uid === 0 || uid === process.getuid?.()
  const st = lstatSync(link)
  const parent = lstatSync(dirname(link))
  return mine(st.uid) && mine(parent.uid) && (parent.mode & 0o022) === 0
}

/** Make sure every directory leading to `path` exists, refusing links not to be trusted. */
function prepareParents(path: string): void {
  const parts = dirname(path).split('/').filter(Boolean)
  let at = ''
  for (const part of parts) {
    at = `${at}/${part}`
    let st = lstatSync(at, { throwIfNoEntry: false })
    if (!st) {
      try {
        mkdirSync(at, { mode: 0o755 })
        continue
      } catch (e) {
        // Another rank (another node's daemon on this machine) made it meanwhile: look again.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        st = lstatSync(at)
      }
    }
    if (st.isSymbolicLink()) {
      if (!trustedLink(at)) throw new Error(`${path}: ${at} is a symlink others could have made; not following it`)
      if (!statSync(at).isDirectory()) throw new Error(`${path}: ${at} is not a directory`)
    } else if (!st.isDirectory()) throw new Error(`${path}: ${at} is not a directory`)
  }
  try {
    if (!lstatSync(path).isFile()) throw new Error(`${path} is no longer a regular file (a symlink, directory or device); not replacing it`)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
}

/** Put one file back from `copy` (its path checked): a new file beside it, made exactly so, renamed over it. */
function writeBack(entry: FileEntry, copy: string): void {
  const tmp = join(dirname(entry.path), `.${basename(entry.path).slice(0, 200)}.ompx-restore-${process.pid}-${Math.random().toString(36).slice(2, 10)}`)
  // COPYFILE_EXCL: created anew (O_EXCL), never through something already at that name.
  copyFileSync(copy, tmp, constants.COPYFILE_EXCL)
  try {
    if (isRoot()) chownSync(tmp, entry.uid, entry.gid)
    chmodSync(tmp, entry.mode)
    utimesSync(tmp, new Date(), Number(BigInt(entry.mtimeNs) / 1000n) / 1e6)
    renameSync(tmp, entry.path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw e
  }
}

/** Put-backs in progress or done on this node, by job, path and checkpoint (size, mtime). */
const putBacks = new Map<string, Promise<void>>()
const MAX_REMEMBERED = 4096

function once(key: string, work: () => void): Promise<void> {
  let p = putBacks.get(key)
  if (!p) {
    p = Promise.resolve().then(work)
    putBacks.set(key, p)
    if (putBacks.size > MAX_REMEMBERED) putBacks.delete(putBacks.keys().next().value!)
    // A failed put-back is tried again by the next rank that needs the file.
    p.catch(() => putBacks.delete(key))
  }
  return p
}

const when = (ns: bigint | string) => new Date(Number(BigInt(ns) / 1_000_000n)).toISOString()

/** The warning for a recorded file that changed or vanished since the checkpoint, or null. */
function changeOf(entry: FileEntry, who: string): string | null {
  // A path may hold any byte but NUL and "/": shown escaped, it cannot forge a line.
  const path = untrusted(entry.path, 4096)
  const how = entry.why === 'mmap' ? 'mapped shared and writable' : entry.why === 'open' ? 'open for writing' : 'matched'
  const advice = `the rank is restored with the file as it is now, not as it was; to save such files in the snapshot and put them back, use --mca crs_criu_capture_files ${OPEN_WORD}`
  let st
  try {
    st = statSync(entry.path, { bigint: true })
  } catch {
    return `ompx: warning: ${who}: ${path}, ${how} at the checkpoint, no longer exists; ${advice}`
  }
  // To the microsecond: a file put back by hand (utimes takes microseconds) is unchanged.
  const drift = st.mtimeNs - BigInt(entry.mtimeNs)
  if (Number(st.size) === entry.size && drift < 1000n && drift > -1000n) return null
  const change = `size ${entry.size} -> ${st.size} bytes, modified ${when(entry.mtimeNs)} -> ${when(st.mtimeNs)}`
  return `ompx: warning: ${who}: ${path}, ${how} at the checkpoint, has changed since (${change}); ${advice}`
}

/** Put back what the rank's snapshot holds of its files, and say which others changed. Throws on a bad manifest. */
export async function restoreFiles(req: FilesRestore): Promise<FilesRestored> {
  let text: string
  try {
    text = readFileSync(join(req.dir, FILES_MANIFEST), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { warnings: [], changed: [] }
    throw e
  }
  let manifest
  try {
    manifest = checkManifest(JSON.parse(text))
  } catch (e) {
    throw new Error(`the snapshot's ${(e as Error).message.startsWith(FILES_MANIFEST) ? '' : `${FILES_MANIFEST}: `}${(e as Error).message}`)
  }
  const who = `rank ${req.rank} on node ${req.node}`
  // Every copy must be a plain file of the rank dir, of its recorded size, before any is put back.
  if (manifest.files.some((f) => f.copy) && !lstatSync(join(req.dir, COPY_DIR), { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${COPY_DIR} in ${req.dir} is not a directory`)
  for (const f of manifest.files) {
    if (!f.copy) continue
    const st = lstatSync(join(req.dir, f.copy), { throwIfNoEntry: false })
    if (!st?.isFile() || st.size !== f.size) throw new Error(`the snapshot's copy of ${f.path} (${f.copy}) is missing or not ${f.size} bytes`)
  }
  const warnings: string[] = []
  const changed: string[] = []
  for (const f of manifest.files) {
    if (f.copy) continue
    const w = changeOf(f, who)
    if (w) warnings.push(w), changed.push(untrusted(f.path, 4096))
  }
  const copied = manifest.files.filter((f) => f.copy)
  // Every path is checked (and its directories made) before any file is written.
  for (const f of copied) {
    try {
      prepareParents(f.path)
    } catch (e) {
      throw new Error(`cannot put back ${untrusted(f.path, 4096)} from the snapshot: ${untrusted((e as Error).message, 8192)}`)
    }
  }
  await Promise.all(
    copied.map((f) =>
      once(`${req.jobid}\0${f.path}\0${f.size}\0${f.mtimeNs}`, () => writeBack(f, join(req.dir, f.copy!))).catch((e) => {
        throw new Error(`cannot put back ${untrusted(f.path, 4096)} from the snapshot: ${untrusted((e as Error).message, 8192)}`)
      }),
    ),
  )
  return { warnings, changed }
}

/** `stream` with `lines` first: the restore's warnings reach the job like the rank's own stderr. */
export function withLeadingLines(stream: ReadableStream<Uint8Array>, lines: string[]): ReadableStream<Uint8Array> {
  if (!lines.length) return stream
  const reader = stream.getReader()
  return new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new TextEncoder().encode(lines.map((l) => `${l}\n`).join(''))),
    async pull(c) {
      const r = await reader.read()
      if (r.done) c.close()
      else c.enqueue(r.value)
    },
    cancel: (why) => reader.cancel(why),
  })
}
