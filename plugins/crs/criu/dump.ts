/**
 * `criu dump` of one process tree into a directory, returning what restore needs.
 *
 * The tree's stdio (and the status channel of launchUnderCriu trees) are unix socketpairs whose
 * other end is the daemon: criu refuses those ("Can't dump half of stream unix connection")
 * unless their inodes are listed with --ext-unix-sk=INO,...; restore then hands new sockets in
 * with --inherit-fd fd[N]:socket:[INO]. The inodes are read from /proc/<root>/fd before the dump.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { type CriuBinary, findCriu } from './binary'
import { isTreeRoot, privateDirOf, PROGRAM_STDERR_FD, treeRootOf } from './launch'
import { criuFailure } from './log'
import { DUMP_MOUNT_ARGS, ownMountNs } from './mounts'
import { type CriuOptions, logLevelOf, networkLock, sharedArgs } from './options'

export const DUMP_LOG = 'dump.log'

/** One fd of the tree root at dump time: `id` is what /proc shows ("socket:[123]", "/dev/null"). */
export interface RootFd {
  fd: number
  id: string
  /**
   * 'socket-closed': a socket whose other end was already closed at dump time (the daemon ended
   * the rank's stdin). criu dumps it as a standalone socket and recreates it so (the program
   * reads EOF, as before); restore must not --inherit-fd it: criu then hangs mid-restore.
   */
  kind: 'socket' | 'socket-closed' | 'pipe' | 'file' | 'other'
}

/** Everything restoreTree needs, JSON-serialisable (kept in the rank's snapshot metadata). */
export interface DumpInfo {
  format: 1
  criuVersion: string
  /** Host pid of the root when dumped (informational: restore gives it a new one). */
  pid: number
  /** The root's pid inside its own pid namespace: 1 for launchUnderCriu trees. */
  nsPid: number
  /** True when the root is launchUnderCriu's init, which reports the exit status on fd 3. */
  init: boolean
  /** The root's private working directory (launch.ts), which restore must recreate; null if none. */
  rootDir: string | null
  /** The tree has its own mount namespace, /proc and /dev/shm (mounts.ts); absent in older dumps. */
  mountNs?: boolean
  /** The root's fds 0-4 (fd 4, the program's stderr, since issue #13), the ones restore re-attaches. */
  fds: RootFd[]
  /** Socket inodes passed to --ext-unix-sk. */
  externalSockets: string[]
  options: Required<Pick<CriuOptions, 'tcpEstablished' | 'extUnixSk' | 'shellJob' | 'extraArgs'>> & { networkLock: string | null }
  leaveRunning: boolean
  leaveStopped: boolean
  dumpedAt: string
  ms: number
  imageBytes: number
  log: string
}

export interface DumpRequest extends CriuOptions {
  /** The criu to use; found with findCriu() when omitted or given as a path. */
  criu?: CriuBinary | string
  /** Host pid of the tree root (CriuTree.pid); the wrapper's pid (CriuTree.wrapperPid) works too. */
  pid: number
  /** Where the images go (created if missing); dump.log is written there too. */
  dir: string
  /** Keep the tree running after the dump (default: criu kills it). */
  leaveRunning?: boolean
  /** Leave the tree stopped (SIGSTOP) after the dump, for whoever continues it (SIGCONT). */
  leaveStopped?: boolean
}

function kindOf(id: string): RootFd['kind'] {
  if (id.startsWith('socket:[')) return 'socket'
  if (id.startsWith('pipe:[')) return 'pipe'
  return id.startsWith('/') ? 'file' : 'other'
}

/**
 * Inodes among `inodes` of unix sockets without a peer. From the dump log when it has criu's
 * debug lines ("Collected: ino N peer_ino 0", -v4: exact, at dump time); else from `ss -xa`
 * just before the dump (null then, and filled in by the caller).
 */
export function peerlessFromLog(log: string, inodes: string[]): Set<string> {
  const out = new Set<string>()
  for (const m of log.matchAll(/Collected: ino (\d+) peer_ino 0 /g)) if (inodes.includes(m[1]!)) out.add(m[1]!)
  return out
}

function peerlessFromSs(inodes: string[]): Set<string> {
  const out = new Set<string>()
  try {
    const r = Bun.spawnSync(['ss', '-xaH'], { stdout: 'pipe', stderr: 'ignore' })
    for (const line of r.stdout.toString().split('\n')) {
      // u_str ESTAB 0 0 * 123 * 0
      const f = line.trim().split(/\s+/)
      if (f.length >= 8 && inodes.includes(f[5]!) && f[7] === '0') out.add(f[5]!)
    }
  } catch {
    // No ss: assume every peer is there.
  }
  return out
}

/** fds 0..PROGRAM_STDERR_FD of `pid` (stdio, status channel, the program's stderr), as /proc names them. */
export function rootFds(pid: number): RootFd[] {
  const out: RootFd[] = []
  for (let fd = 0; fd <= PROGRAM_STDERR_FD; fd++) {
    try {
      const id = readlinkSync(`/proc/${pid}/fd/${fd}`)
      out.push({ fd, id, kind: kindOf(id) })
    } catch {
      // Not open.
    }
  }
  return out
}

function nsPidOf(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^NSpid:\s*(.*)$/m)
  const ids = m?.[1]?.trim().split(/\s+/) ?? []
  return Number(ids[ids.length - 1] ?? pid)
}

function dirBytes(dir: string): number {
  let total = 0
  for (const f of readdirSync(dir)) if (f.endsWith('.img')) total += statSync(join(dir, f)).size
  return total
}

export function resolveCriu(criu: CriuBinary | string | undefined): CriuBinary {
  return typeof criu === 'object' ? criu : findCriu(criu)
}

/** Dump the tree rooted at `req.pid` into `req.dir`. Throws a CriuError naming the log line on failure. */
export async function dumpTree(req: DumpRequest): Promise<DumpInfo> {
  const criu = resolveCriu(req.criu)
  const level = logLevelOf(req)
  if (!existsSync(`/proc/${req.pid}`)) throw new Error(`criu dump: no process ${req.pid} (the rank has exited)`)
  // Given what the daemon spawned (unshare, criu restore) instead of the root, dump the root.
  req = { ...req, pid: treeRootOf(req.pid) }
  mkdirSync(req.dir, { recursive: true })
  const fds = rootFds(req.pid)
  const init = isTreeRoot(req.pid)
  const rootDir = privateDirOf(req.pid)
  const nsPid = nsPidOf(req.pid)
  const mountNs = ownMountNs(req.pid)
  const externalSockets = [...new Set(fds.filter((f) => f.kind === 'socket').map((f) => f.id.slice(8, -1)))]
  const peerlessBefore = level < 4 ? peerlessFromSs(externalSockets) : null
  const extraArgs = req.extraArgs ?? []
  const lock = req.tcpEstablished ? networkLock(extraArgs) : null
  const args = ['dump', '-t', String(req.pid), '-D', req.dir, '-o', DUMP_LOG, `-v${level}`]
  if (req.leaveRunning) args.push('--leave-running')
  else if (req.leaveStopped) args.push('--leave-stopped')
  if (externalSockets.length) args.push(`--ext-unix-sk=${externalSockets.join(',')}`)
  if (mountNs) args.push(...DUMP_MOUNT_ARGS)
  args.push(...sharedArgs(req, lock))
  const started = performance.now()
  const p = Bun.spawn([criu.path, ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()])
  const ms = Math.round(performance.now() - started)
  if (code !== 0) throw criuFailure(`criu dump of pid ${req.pid}`, join(req.dir, DUMP_LOG), p.signalCode ? null : code, `${out}${err}`)
  const peerless = peerlessBefore ?? peerlessFromLog(readFileSync(join(req.dir, DUMP_LOG), 'utf8'), externalSockets)
  for (const f of fds) if (f.kind === 'socket' && peerless.has(f.id.slice(8, -1))) f.kind = 'socket-closed'
  return {
    format: 1,
    criuVersion: criu.version,
    pid: req.pid,
    nsPid,
    init,
    rootDir,
    mountNs,
    fds,
    externalSockets,
    options: {
      tcpEstablished: !!req.tcpEstablished,
      extUnixSk: !!req.extUnixSk,
      shellJob: !!req.shellJob,
      extraArgs,
      networkLock: lock,
    },
    leaveRunning: !!req.leaveRunning,
    leaveStopped: !req.leaveRunning && !!req.leaveStopped,
    dumpedAt: new Date().toISOString(),
    ms,
    imageBytes: dirBytes(req.dir),
    log: DUMP_LOG,
  }
}
