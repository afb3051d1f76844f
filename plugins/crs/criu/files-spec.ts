/**
 * Files a crs criu snapshot carries besides the images (docs/criu.md, "Files the rank writes"):
 * the crs_criu_capture_files parameter, the manifest `criu-files.json` a capture writes into the
 * rank's snapshot, and the checks a restart makes of both before it writes anything. criu itself
 * saves no file contents (it reopens files by path), so a file the program changed after the
 * checkpoint would no longer match the restored memory unless ompx puts it back.
 */
import { posix } from 'node:path'

/** The manifest, in the rank dir: checksummed, staged and verified like every snapshot file. */
export const FILES_MANIFEST = 'criu-files.json'
/** Where the copies go inside the rank dir: `files/0`, `files/1`, ... (never a name from the user). */
export const COPY_DIR = 'files'
/** The word in crs_criu_capture_files for "every file the rank writes to" (open or shared-mapped). */
export const OPEN_WORD = 'open'

/** Most patterns one value may hold, and most files one rank may have captured or recorded. */
export const MAX_PATTERNS = 64
export const MAX_FILES = 10_000

export interface CaptureSpec {
  /** Copy every regular file the rank holds open for writing or has mapped shared and writable. */
  open: boolean
  /** Globs, absolute or relative to the rank's working directory. */
  patterns: string[]
}

/** Split on commas outside braces, so `data/{a,b}.bin` stays one glob. */
function splitTop(text: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const c of text) {
    if (c === '{') depth++
    else if (c === '}') depth = Math.max(0, depth - 1)
    if (c === ',' && depth === 0) {
      out.push(cur)
      cur = ''
    } else cur += c
  }
  return [...out, cur]
}

/** What crs_criu_capture_files must be when `text` is not one, else undefined (the param's check). */
export function captureSpecProblem(text: string): string | undefined {
  try {
    parseCaptureSpec(text)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

/** Parse crs_criu_capture_files; throws an Error saying what it must be. Empty: capture nothing. */
export function parseCaptureSpec(text: string | undefined): CaptureSpec {
  const spec: CaptureSpec = { open: false, patterns: [] }
  if (!text?.trim()) return spec
  const items = splitTop(text).map((s) => s.trim())
  const what = `comma-separated globs (absolute, or relative to the rank's working directory) and/or "${OPEN_WORD}"`
  if (items.length > MAX_PATTERNS) throw new Error(`at most ${MAX_PATTERNS} ${what}`)
  for (const item of items) {
    if (!item) throw new Error(`${what}, without empty items`)
    if (item.includes('\0') || item.length > 4096) throw new Error(`${what}; "${item.slice(0, 40)}..." is not a usable glob`)
    if (item === OPEN_WORD) spec.open = true
    else spec.patterns.push(item)
  }
  return spec
}

/** One file of the manifest: recorded at every capture, copied when the capture spec asks. */
export interface FileEntry {
  /** Absolute, normalised path on the rank's node, as the kernel named it (no symlinks). */
  path: string
  /** Why it is listed: held open for writing, mapped shared+writable, or matched by a glob. */
  why: 'open' | 'mmap' | 'glob'
  size: number
  /** mtime in nanoseconds since the epoch, as a decimal string (exact; a double is not). */
  mtimeNs: string
  /** Permission bits (mode & 0o7777), owner and group. */
  mode: number
  uid: number
  gid: number
  /** The copy in the rank dir (`files/<n>`), or null when only recorded (warned about at restart). */
  copy: string | null
}

export interface FilesManifest {
  format: 1
  files: FileEntry[]
}

/** Pseudo file systems whose "regular files" are not data: never captured nor written back. */
const PSEUDO = ['/proc', '/sys', '/dev']
const ALLOWED_UNDER_DEV = ['/dev/shm']

const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`)

/** Why `path` may not be captured or written back, or null: absolute, normalised, not a pseudo file. */
export function badRecordedPath(path: unknown): string | null {
  if (typeof path !== 'string' || !path) return 'is empty'
  if (path.length > 4096) return 'is too long'
  if (path.includes('\0')) return 'contains a NUL byte'
  if (!path.startsWith('/')) return 'is not absolute'
  if (path.split('/').some((p) => p === '..' || p === '.')) return 'has a "." or ".." component'
  if (posix.normalize(path) !== path || path.endsWith('/')) return 'is not a normalised path'
  if (PSEUDO.some((d) => under(path, d)) && !ALLOWED_UNDER_DEV.some((d) => under(path, d) && path !== d)) return 'is in /proc, /sys or /dev'
  return null
}

const COPY_NAME = new RegExp(`^${COPY_DIR}/(0|[1-9]\\d{0,8})$`)
const isCount = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER

/**
 * Check a manifest read back from a snapshot: every path absolute and normalised, listed once;
 * every copy named `files/<n>` and used once; the numbers whole. Throws naming the entry.
 */
export function checkManifest(value: unknown): FilesManifest {
  const m = value as FilesManifest
  if (typeof m !== 'object' || m === null || m.format !== 1 || !Array.isArray(m.files)) throw new Error(`${FILES_MANIFEST} is not a format-1 manifest`)
  if (m.files.length > MAX_FILES) throw new Error(`${FILES_MANIFEST} lists more than ${MAX_FILES} files`)
  const paths = new Set<string>()
  const copies = new Set<string>()
  m.files.forEach((f, i) => {
    const bad = (why: string) => new Error(`${FILES_MANIFEST}: entry ${i} ${why}`)
    if (typeof f !== 'object' || f === null) throw bad('is not an object')
    const why = badRecordedPath(f.path)
    if (why) throw bad(`path ${JSON.stringify(String(f.path).slice(0, 200))} ${why}`)
    if (paths.has(f.path)) throw bad(`lists ${f.path} twice`)
    paths.add(f.path)
    if (!['open', 'mmap', 'glob'].includes(f.why)) throw bad('has an unknown reason')
    if (![f.size, f.mode, f.uid, f.gid].every(isCount) || f.mode > 0o7777) throw bad('has a bad size, mode, uid or gid')
    if (typeof f.mtimeNs !== 'string' || !/^\d{1,30}$/.test(f.mtimeNs)) throw bad('has a bad mtime')
    if (f.copy !== null) {
      if (typeof f.copy !== 'string' || !COPY_NAME.test(f.copy)) throw bad(`names its copy ${JSON.stringify(String(f.copy).slice(0, 200))}, not ${COPY_DIR}/<n>`)
      if (copies.has(f.copy)) throw bad(`shares its copy ${f.copy}`)
      copies.add(f.copy)
    }
  })
  return m
}
