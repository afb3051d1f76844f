/**
 * The user's session directory ($TMPDIR/ompx-<user>, mode 0700) and one directory per job in
 * it. Tools find running HNPs there; ranks get their job's directory as OMPX_SESSION_DIR.
 * See docs/security.md for why the directory is checked the way it is.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ActionableError } from '../errors'

// node:os only when TMPDIR or the user's name is not known otherwise: `ompx ps` with no HNP
// running reads nothing else, and loading the module was ~1 ms of it (issue #16).
const os = () => require('node:os') as typeof import('node:os')

/**
 * The user's name: Bun's os.userInfo() can say "unknown", so ask /etc/passwd by uid first.
 * Once per process and uid: `ompx run` asks at every contact, job and reaper path (issue #16).
 */
let known: { uid: number; name: string } | undefined
export function userName(): string {
  const uid = process.getuid?.() ?? 0
  if (known?.uid !== uid) known = { uid, name: lookUpUserName(uid) }
  return known.name
}

function lookUpUserName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':')
      if (f[2] === String(uid) && f[0]) return f[0]
    }
  } catch {
    // No passwd file (minimal containers): fall through.
  }
  const name = process.env.USER || process.env.LOGNAME || os().userInfo().username
  return name && name !== 'unknown' ? name : `uid${uid}`
}

/**
 * The session directory, made safe before anything is written into it. Checked with lstat, never
 * followed: it must be a real directory (not a symbolic link another user planted in a sticky
 * /tmp), owned by us, and writable by nobody else. A directory that others could write to may
 * already hold their files, so it is refused rather than tightened; one that others can only
 * read or search is tightened to 0700 (nothing can have been planted in it).
 */
export function sessionRoot(): string {
  const root = join(process.env.TMPDIR || os().tmpdir(), `ompx-${userName()}`)
  const uid = process.getuid?.() ?? 0
  // lstat first: mkdir of an existing directory throws, and an error object costs more than the
  // check itself, at every contact file, job directory and reaper path of a launch (issue #16).
  let st = lstatSync(root, { throwIfNoEntry: false })
  if (st && st.dev === checked?.dev && st.ino === checked.ino && checked.root === root && st.uid === uid && (st.mode & 0o077) === 0) return root
  if (!st) {
    mkdirSync(dirname(root), { recursive: true })
    try {
      mkdirSync(root, { mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    st = lstatSync(root)
  }
  const refuse = (why: string): never => {
    throw new ActionableError(`session directory ${root} ${why}; refusing to use it (remove it, or set TMPDIR to a private directory)`)
  }
  if (st.isSymbolicLink()) refuse('is a symbolic link')
  if (!st.isDirectory()) refuse('is not a directory')
  if (st.uid !== uid) refuse(`belongs to uid ${st.uid}, not to us (uid ${uid})`)
  if ((st.mode & 0o022) !== 0) refuse(`is writable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`)
  // Readable or searchable by others: nothing can have been planted; job secrets will live here.
  if ((st.mode & 0o077) !== 0) chmodSync(root, 0o700)
  checked = { root, dev: st.dev, ino: st.ino }
  return root
}
/** The directory this process last found safe: the same inode, still private, needs no new check. */
let checked: { root: string; dev: number; ino: number } | undefined

/**
 * Remove what HNPs that died without cleaning up (SIGKILL) left in the session directory:
 * `job-<pid>.<n>` and `nodes-<pid>` of pids that are no longer running.
 */
export function cleanStaleSessions(): void {
  const root = sessionRoot()
  for (const name of readdirSync(root)) {
    const m = /^(?:job-(\d+)\.\d+|nodes-(\d+)|reap-(\d+)\.pgids)$/.exec(name)
    const pid = Number(m?.[1] ?? m?.[2] ?? m?.[3])
    if (!m || pid === process.pid || pidAlive(pid)) continue
    rmSync(join(root, name), { recursive: true, force: true })
  }
}

/** Whether a process with this pid exists (EPERM: it does, it is just not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function createJobDir(jobid: string): string {
  const dir = join(sessionRoot(), `job-${jobid}`)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  return dir
}

export function removeJobDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
