/**
 * The file half of a crs criu capture (docs/criu.md, "Files the rank writes"). Every capture
 * records path, size and mtime of the files the rank writes to, so a restart can warn when one
 * has changed since; with crs_criu_capture_files it also copies the files asked for into the
 * rank's snapshot (`files/<n>`, listed in criu-files.json), to be put back before criu restores.
 *
 * A copy must show the file as it was at the dump: the tree is dumped with --leave-stopped, the
 * files are read while it is stopped, and only then is it continued (or killed, for `term`, as
 * criu would have). A failed copy continues the tree: the checkpoint fails, the rank lives on.
 */
import { copyFileSync, mkdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DumpInfo } from './dump'
import { globFiles, treePids, writtenFiles } from './files-scan'
import { COPY_DIR, FILES_MANIFEST, MAX_FILES, type CaptureSpec, type FileEntry, type FilesManifest } from './files-spec'
import { childrenOf } from './tree'

export interface DumpMode {
  leaveRunning: boolean
  leaveStopped: boolean
}

export interface FilesCapture {
  /** The tree root. */
  root: number
  /** The rank's snapshot directory. */
  dir: string
  spec: CaptureSpec
  /** The rank's working directory (relative globs), when ompx started it. */
  cwd?: string
  /** Directories whose files are never listed (the root's private cwd). */
  skipUnder: string[]
}

/** What a capture did with files, kept in the rank's criu info (ompx-rank.json). */
export interface FilesSummary {
  copied: number
  copiedBytes: number
  recorded: number
  /** Globs that matched no regular file at this checkpoint. */
  unmatched: string[]
}

/** The working directory ompx started each tree in (by root pid), for relative globs. */
const cwds = new Map<number, string>()

/** Remember the rank's working directory until its tree ends (rank.ts, at launch and restore). */
export function rememberCwd(root: number, cwd: string | undefined, exited: Promise<unknown>): void {
  if (!cwd) return
  cwds.set(root, cwd)
  void exited.then(() => cwds.delete(root))
}

function cwdOf(root: number): string {
  const known = cwds.get(root)
  if (known) return known
  const [program] = childrenOf(root)
  try {
    return readlinkSync(`/proc/${program ?? root}/cwd`)
  } catch {
    return '/'
  }
}

function entryOf(path: string, why: FileEntry['why'], copy: string | null): FileEntry | null {
  try {
    const st = statSync(path, { bigint: true })
    if (!st.isFile()) return null
    return { path, why, size: Number(st.size), mtimeNs: String(st.mtimeNs), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), copy }
  } catch {
    return null // gone since it was listed
  }
}

/** List (and copy what the spec asks for of) the files; writes the manifest when it lists any. */
function captureFiles(req: FilesCapture, written: Map<string, FileEntry['why']>): FilesSummary {
  const globbed = req.spec.patterns.length ? globFiles(req.spec.patterns, req.cwd ?? cwdOf(req.root)) : { paths: [], unmatched: [] }
  const globs = new Set(globbed.paths.filter((p) => !req.skipUnder.some((d) => p.startsWith(`${d}/`))))
  const wanted = new Map<string, FileEntry['why']>(written)
  for (const p of globs) if (!wanted.has(p)) wanted.set(p, 'glob')
  if (wanted.size > MAX_FILES) throw new Error(`rank holds or matches ${wanted.size} files, more than the ${MAX_FILES} a snapshot may carry`)
  const files: FileEntry[] = []
  const summary: FilesSummary = { copied: 0, copiedBytes: 0, recorded: 0, unmatched: globbed.unmatched }
  for (const [path, why] of [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const copy = (req.spec.open && why !== 'glob') || globs.has(path) ? `${COPY_DIR}/${summary.copied}` : null
    const entry = entryOf(path, why, copy)
    if (!entry) continue
    if (copy) {
      mkdirSync(join(req.dir, COPY_DIR), { recursive: true, mode: 0o700 })
      // In the kernel (copy_file_range): no file passes through our memory, whatever its size.
      copyFileSync(path, join(req.dir, copy))
      // What was copied is what the entry says (a glob's file may change under us: the rank is stopped, others are not).
      entry.size = statSync(join(req.dir, copy)).size
      summary.copied++
      summary.copiedBytes += entry.size
    } else summary.recorded++
    files.push(entry)
  }
  if (files.length) {
    const manifest: FilesManifest = { format: 1, files }
    writeFileSync(join(req.dir, FILES_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 })
  }
  return summary
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig)
    } catch {}
  }
}

/**
 * Dump the tree with `dump` and capture its files. Without copies to make, the files are listed
 * before the dump (a `term` dump ends the tree) and stat'ed after it; with copies, as above.
 */
export async function dumpWithFiles(req: FilesCapture, mode: DumpMode, dump: (mode: DumpMode) => Promise<DumpInfo>): Promise<{ info: DumpInfo; files: FilesSummary }> {
  const skip = [...req.skipUnder, req.dir]
  if (!req.spec.open && !req.spec.patterns.length) {
    const written = writtenFiles(req.root, skip)
    const info = await dump(mode)
    return { info, files: captureFiles({ ...req, skipUnder: skip }, written) }
  }
  const info = await dump({ leaveRunning: false, leaveStopped: true })
  const pids = treePids(req.root)
  let files: FilesSummary | undefined
  try {
    files = captureFiles({ ...req, skipUnder: skip }, writtenFiles(req.root, skip))
  } finally {
    // criu left every task stopped: continue them, or end the tree as a `term` dump does.
    if (!files || mode.leaveRunning) signalAll(pids, 'SIGCONT')
    else if (!mode.leaveStopped) signalAll([req.root], 'SIGKILL')
  }
  return { info: { ...info, ...mode }, files }
}
