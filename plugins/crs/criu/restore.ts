/**
 * `criu restore` of a dumped tree, returning the same handle as launchUnderCriu.
 *
 * - criu runs WITHOUT -d: it stays the parent of the restored root and reaps it, so the tree can
 *   never become a zombie nobody waits for (pid 1 of this machine is not a reaper one can count
 *   on), and its exit marks the end of the tree. It returns 0 whatever the program did, so the
 *   exit status comes from the root's status channel (launch.ts), re-attached like stdio.
 * - The restored root keeps the parent-death signal unshare gave it (SIGKILL): when this criu
 *   process dies, the tree dies too, as it did with unshare.
 * - Each socket/pipe the root had on fds 0-4 gets a fresh socketpair from Bun at criu's fd 3+k
 *   and `--inherit-fd fd[3+k]:<id>`; output then continues on the new socket from the next line.
 * - Ready = criu wrote --pidfile, which it does after every task is restored and just before it
 *   resumes them. A failure after that point (rare: ptrace errors) kills the tree; `exited` then
 *   carries the log line in `error`.
 * - With a `workDir` the images are never written to: besides its log and pidfile (-W), criu
 *   writes `stats-restore` into the images dir (-D), so -D is then a view of the images made of
 *   symlinks in workDir. A snapshot store may be read-only or shared, and a sealed snapshot must
 *   stay as it was checksummed.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { CriuBinary } from './binary'
import { type DumpInfo, resolveCriu } from './dump'
import { PROGRAM_STDERR_FD, STATUS_FD } from './launch'
import { criuFailure } from './log'
import { RESTORE_MOUNT_ARGS } from './mounts'
import { type CriuOptions, logLevelOf, sharedArgs } from './options'
import { childrenOf, makeTree, type CriuTree } from './tree'
import { stdinSink } from './stdin-sink'

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {}
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {}
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir)
  } catch {}
}

export const RESTORE_LOG = 'restore.log'
export const RESTORE_PIDFILE = 'restore.pid'

/**
 * Make `work` a view of the images in `dir`: a symlink per image (and the `parent` link of an
 * incremental dump). Only what criu reads is linked, never a name it writes (restore.log,
 * restore.pid, stats-restore), which would otherwise be written through the link into `dir`.
 */
function linkImages(dir: string, work: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.img') && name !== 'parent') continue
    rmSync(join(work, name), { force: true })
    symlinkSync(join(dir, name), join(work, name))
  }
}

export interface RestoreRequest extends Pick<CriuOptions, 'logLevel'> {
  criu?: CriuBinary | string
  /** The images. */
  dir: string
  /** What dumpTree returned for them. */
  info: DumpInfo
  /** Give the program a writable stdin (when it had a socket/pipe stdin at dump time). */
  stdin?: boolean
  /**
   * Where criu writes (restore.log, restore.pid, stats-restore), created if missing; default
   * `dir`. When set, nothing is written to `dir` (a read-only or shared snapshot store).
   */
  workDir?: string
  /** More criu arguments for this restore only (the dump's extraArgs are repeated anyway). */
  extraArgs?: string[]
  /** Give up (and kill what was restored) after this long. Default 60 s. */
  timeoutMs?: number
  /** Leave every task stopped (--leave-stopped) for continueTree: the images are still being verified. */
  leaveStopped?: boolean
}

/**
 * SIGCONT every task of a tree restored with leaveStopped, root first. Each task by pid: the
 * program may have made groups of its own. (SIGCONT resumes a namespace's init from outside
 * too: the kernel continues stopped tasks before it decides whether to deliver the signal.)
 */
export async function continueTree(root: number, timeoutMs = 10_000): Promise<void> {
  await criuLetGo(root, timeoutMs)
  const cont = (pid: number): void => {
    try {
      process.kill(pid, 'SIGCONT')
    } catch {}
    for (const child of childrenOf(pid)) cont(child)
  }
  cont(root)
}

/**
 * Wait until criu has stopped every task of a tree restored with leaveStopped and let go of it.
 * criu writes the pidfile before it stops the tasks and detaches: a SIGCONT sent before that is
 * lost, and a SIGKILL then (images that failed verification) left criu itself waiting on its
 * ptraced task for good on a loaded machine.
 */
export async function criuLetGo(root: number, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!held(root) && performance.now() < deadline) await Bun.sleep(2)
}

/** Every task of the tree stopped (State T) and untraced; a task already gone counts as held. */
function held(pid: number): boolean {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return true
  }
  if (/^State:\s+(\S)/m.exec(status)?.[1] !== 'T' || /^TracerPid:\s+(\d+)/m.exec(status)?.[1] !== '0') return false
  return childrenOf(pid).every(held)
}

const EMPTY = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() })

/** Restore the tree in `req.dir`. Throws a CriuError naming the restore log line on failure. */
export async function restoreTree(req: RestoreRequest): Promise<CriuTree> {
  const criu = resolveCriu(req.criu)
  const { info } = req
  const work = req.workDir ?? req.dir
  if (!existsSync(join(req.dir, 'inventory.img'))) {
    throw criuFailure(`criu restore from ${req.dir}`, null, null, `Error: no criu images in ${req.dir} (inventory.img is missing)`)
  }
  // One new channel per distinct socket/pipe of the root; fds sharing one (2>&1) share it.
  const ids = [...new Set(info.fds.filter((f) => f.kind === 'socket' || f.kind === 'pipe').map((f) => f.id))]
  const slotOf = new Map(ids.map((id, k) => [id, 3 + k]))
  // The root's private cwd (launch.ts) must exist for criu to restore it.
  if (info.rootDir) mkdirSync(info.rootDir, { recursive: true, mode: 0o700 })
  mkdirSync(work, { recursive: true, mode: 0o700 })
  if (resolve(work) !== resolve(req.dir)) linkImages(req.dir, work)
  const pidfile = join(work, RESTORE_PIDFILE)
  rmSync(pidfile, { force: true })
  const args = ['restore', '-D', work, '-W', work, '-o', RESTORE_LOG, `-v${logLevelOf(req)}`, '--pidfile', RESTORE_PIDFILE]
  if (req.leaveStopped) args.push('--leave-stopped')
  for (const [id, slot] of slotOf) args.push('--inherit-fd', `fd[${slot}]:${id}`)
  if (info.mountNs) args.push(...RESTORE_MOUNT_ARGS)
  args.push(...sharedArgs(info.options, info.options.networkLock), ...(req.extraArgs ?? []))
  const sub = Bun.spawn([criu.path, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', ...ids.map(() => 'pipe' as const)],
    detached: true,
  })
  const criuOut = Promise.all([new Response(sub.stdout).text(), new Response(sub.stderr).text()]).then((t) => t.join(''))
  const logPath = join(work, RESTORE_LOG)
  const what = `criu restore from ${req.dir}`

  // Our ends of the new channels, by the root's fd number.
  const slotFds = ids.map((_, k) => sub.stdio[3 + k] as unknown as number)
  const fdFor = (n: number): number | null => {
    const f = info.fds.find((x) => x.fd === n)
    const slot = f && slotOf.get(f.id)
    return slot ? slotFds[slot - 3]! : null
  }

  let root = 0
  let criuDone = false
  void sub.exited.then(() => (criuDone = true))
  const deadline = performance.now() + (req.timeoutMs ?? 60_000)
  for (let wait = 1; !root; wait = Math.min(wait * 2, 10)) {
    const text = existsSync(pidfile) ? readFileSync(pidfile, 'utf8').trim() : ''
    if (/^\d+$/.test(text)) root = Number(text)
    else if (criuDone || performance.now() > deadline) {
      if (!criuDone) {
        // Tasks criu already forked are in the restored session, not criu's group: a restore
        // stuck half-way leaves them behind unless they are killed by pid (the first is the
        // namespace's init, whose death takes the rest).
        for (const child of childrenOf(sub.pid)) killQuietly(child)
        process.kill(-sub.pid, 'SIGKILL')
        await sub.exited
      }
      for (const fd of slotFds) closeQuietly(fd)
      if (info.rootDir) rmdirQuietly(info.rootDir)
      throw criuFailure(what, logPath, sub.signalCode ? null : sub.exitCode, await criuOut)
    } else await Bun.sleep(wait)
  }

  // Streams are made only now: whatever the root wrote meanwhile waits in the socket buffers.
  const taken = new Set<number>()
  const readable = (n: number) => {
    const fd = fdFor(n)
    if (fd === null || taken.has(fd)) return EMPTY()
    taken.add(fd)
    return Bun.file(fd).stream() as ReadableStream<Uint8Array>
  }
  const stdinFd = fdFor(0)
  const statusFd = info.init ? fdFor(STATUS_FD) : null
  const status = statusFd === null ? Promise.resolve('') : new Response(Bun.file(statusFd).stream()).text()
  const tree = makeTree({
    rootPid: () => root,
    privateDir: () => info.rootDir,
    wrapper: {
      pid: sub.pid,
      exited: sub.exited,
      get signalCode() {
        return (sub.signalCode as NodeJS.Signals | null) ?? null
      },
    },
    stdout: readable(1),
    // The program's stderr: the root's fd 4 (launch.ts), or fd 2 in dumps older than issue #13.
    stderr: readable(fdFor(PROGRAM_STDERR_FD) !== null ? PROGRAM_STDERR_FD : 2),
    stdin: stdinFd !== null ? stdinSink(stdinFd, !!req.stdin) : null,
    status,
  })
  // A criu that fails after the pidfile (it then kills the tree) must not look like a plain
  // crash. A criu killed by a signal was killed by someone on purpose: no criu error then.
  const exited = Promise.all([tree.exited, sub.exited, criuOut]).then(([exit, code, out]) =>
    code === 0 || sub.signalCode ? exit : { ...exit, error: criuFailure(what, logPath, code, out).message },
  )
  return Object.assign(tree, { exited })
}
