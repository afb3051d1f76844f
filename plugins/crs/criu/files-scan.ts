/**
 * Which files a crs criu rank writes to, read from /proc at capture time, and which files the
 * globs of crs_criu_capture_files name. Every process of the rank's tree counts: a program's
 * children and threads write files too. Paths are the kernel's (absolute, symlinks resolved); a
 * file whose path no longer leads to the same inode from here (deleted, or in the rank's own
 * mounts, such as a private /dev/shm) is left to criu, which saves those itself.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { badRecordedPath, type FileEntry } from './files-spec'

/** Every process of the tree rooted at `root` (root first), through every thread's children. */
export function treePids(root: number): number[] {
  const seen = new Set<number>()
  const walk = (pid: number) => {
    if (seen.has(pid)) return
    seen.add(pid)
    let tasks: string[] = []
    try {
      tasks = readdirSync(`/proc/${pid}/task`)
    } catch {
      return // gone
    }
    for (const tid of tasks) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) walk(Number(c))
      } catch {}
    }
  }
  walk(root)
  return [...seen]
}

/** The same inode as seen through the process (`/proc/<pid>/fd/N`, map_files) and at `path` here. */
function sameFile(viaProc: string, path: string): boolean {
  try {
    const a = statSync(viaProc)
    const b = lstatSync(path)
    return a.isFile() && b.isFile() && a.nlink > 0 && a.dev === b.dev && a.ino === b.ino
  } catch {
    return false
  }
}

const O_ACCMODE = 3
const O_RDONLY = 0

/** Regular files some process of the tree holds open for writing (O_WRONLY or O_RDWR). */
function openForWriting(pid: number, out: Map<string, FileEntry['why']>): void {
  let fds: string[] = []
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return
  }
  for (const fd of fds) {
    try {
      const path = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (!path.startsWith('/') || out.has(path)) continue
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1]
      if (flags === undefined || (parseInt(flags, 8) & O_ACCMODE) === O_RDONLY) continue
      if (sameFile(`/proc/${pid}/fd/${fd}`, path)) out.set(path, 'open')
    } catch {
      // Closed meanwhile.
    }
  }
}

/** Files some process of the tree maps shared and writable (`rw?s` in /proc/<pid>/maps). */
function sharedWritableMaps(pid: number, out: Map<string, FileEntry['why']>): void {
  let maps = ''
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8')
  } catch {
    return
  }
  for (const line of maps.split('\n')) {
    // 7f..-7f.. rw-s 00000000 08:01 1234   /path/with spaces
    const m = /^([0-9a-f]+-[0-9a-f]+) (.w.s) [0-9a-f]+ \S+ (\d+)\s+(\/.*)$/.exec(line)
    if (!m || m[3] === '0' || out.has(m[4]!)) continue
    if (sameFile(`/proc/${pid}/map_files/${m[1]}`, m[4]!)) out.set(m[4]!, 'mmap')
  }
}

/**
 * Every regular file the tree of `root` writes to, with why. `skipUnder`: directories whose files
 * are never listed (the snapshot being written, the root's private cwd).
 */
export function writtenFiles(root: number, skipUnder: string[]): Map<string, FileEntry['why']> {
  const out = new Map<string, FileEntry['why']>()
  for (const pid of treePids(root)) {
    openForWriting(pid, out)
    sharedWritableMaps(pid, out)
  }
  for (const path of out.keys()) {
    if (badRecordedPath(path) || skipUnder.some((d) => path.startsWith(`${d}/`))) out.delete(path)
  }
  return out
}

const GLOB_CHARS = /[*?[\]{}!]/

/**
 * The regular files (never through a symlink) matched by `patterns`, relative ones taken from
 * `cwd`, as real paths; and the patterns that matched nothing.
 */
export function globFiles(patterns: string[], cwd: string): { paths: string[]; unmatched: string[] } {
  const paths = new Set<string>()
  const unmatched: string[] = []
  for (const pattern of patterns) {
    const abs = resolve(isAbsolute(pattern) ? pattern : join(cwd, pattern))
    const parts = abs.split('/')
    const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p))
    let found: string[] = []
    if (firstGlob < 0) found = [abs]
    else {
      const base = parts.slice(0, firstGlob).join('/') || '/'
      try {
        const glob = new Bun.Glob(parts.slice(firstGlob).join('/'))
        found = [...glob.scanSync({ cwd: base, onlyFiles: true, followSymlinks: false, dot: true, absolute: true })]
      } catch {
        found = [] // the base directory is missing or unreadable: nothing matches
      }
    }
    let matched = false
    for (const p of found) {
      try {
        if (!lstatSync(p).isFile()) continue
        const real = realpathSync(p)
        if (badRecordedPath(real)) continue
        paths.add(real)
        matched = true
      } catch {}
    }
    if (!matched) unmatched.push(pattern)
  }
  return { paths: [...paths], unmatched }
}
