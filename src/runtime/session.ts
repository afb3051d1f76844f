/**
 * The user's session directory ($TMPDIR/ompx-<user>, mode 0700) and one directory per job in
 * it. Tools find running HNPs there; ranks get their job's directory as OMPX_SESSION_DIR.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../errors'

/** The user's name: Bun's os.userInfo() can say "unknown", so ask /etc/passwd by uid first. */
export function userName(): string {
  const uid = process.getuid?.() ?? 0
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':')
      if (f[2] === String(uid) && f[0]) return f[0]
    }
  } catch {
    // No passwd file (minimal containers): fall through.
  }
  const name = process.env.USER || process.env.LOGNAME || userInfo().username
  return name && name !== 'unknown' ? name : `uid${uid}`
}

export function sessionRoot(): string {
  const root = join(process.env.TMPDIR || tmpdir(), `ompx-${userName()}`)
  mkdirSync(root, { recursive: true, mode: 0o700 })
  const st = statSync(root)
  if (st.uid !== process.getuid?.()) {
    throw new ActionableError(`session directory ${root} belongs to another user; set TMPDIR to a private directory`)
  }
  // Someone may have loosened it; job secrets will live here, so it must be ours alone.
  if ((st.mode & 0o077) !== 0) chmodSync(root, 0o700)
  return root
}

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
