/**
 * Start a program so that criu can dump it and restore it anywhere:
 *
 *   unshare --pid --fork --mount --propagation private --ipc --kill-child --
 *     setsid sh -c INIT ompx-criu-init PROGRAM ARGS...
 *
 * - Own pid namespace: restored pids never collide with live ones on the target node, and the
 *   whole tree dies with its init.
 * - `setsid` inside the namespace: criu refuses a tree whose session leader is outside it
 *   ("A session leader of N(1) is outside of its pid namespace"). The root is therefore also the
 *   leader of the tree's process group: signalling -root reaches every process of the rank.
 * - Own mount namespace (mounts.ts; crs_criu_private_mounts, default on): a procfs of the pid
 *   namespace, so /proc/$$ is the rank's own process, and a tmpfs on /dev/shm that is dumped and
 *   restored with the rank, and an IPC namespace for its SysV shared memory. INIT mounts them
 *   first (MOUNT_SETUP). Without it (unshare --pid only), the rank sees the host's /proc and
 *   /dev/shm.
 * - --kill-child: when unshare dies (the daemon's reaper kills its group), so does the tree.
 * - The root is `sh` running INIT, not the program: pid 1 of a namespace ignores every signal it
 *   has no handler for, so a program without a SIGTERM handler could not be terminated as pid 1.
 *   The shell traps them (handlers, not SIG_IGN, so the program starts with default dispositions),
 *   runs the program in the foreground and writes its `$?` to fd 3, a channel to the daemon that
 *   is restored with the tree: `criu restore` returns 0 whatever the job did, so this is how the
 *   exit status of a restored rank reaches the daemon.
 * - Stdio are Bun's socketpairs (Bun.spawn's "pipe" is a unix socketpair, not a pipe). Bun closes
 *   every fd it was not told to pass, so no stray fd reaches the tree.
 * - The program's stderr arrives on fd 4, which the root keeps and makes the program's fd 2: unshare
 *   and setsid keep the fd 2 they were started with, and unshare prints "sigprocmask unblock
 *   failed" whenever its child dies of SIGKILL (every dump that ends the rank). That must not
 *   reach the rank's output; it is kept for error messages instead. The root's own fd 2 is
 *   /dev/null: a shell reports a foreground program killed by SIGTERM ("Terminated") on its
 *   stderr, which a plain rank does not print.
 */
import type { Subprocess } from 'bun'
import { readFileSync, readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { MOUNT_SETUP, MOUNT_TOOLS } from './mounts'
import { childrenOf, makeTree, type CriuTree } from './tree'

/** The root's fd on which it reports the program's exit status. */
export const STATUS_FD = 3
/**
 * The program's stderr, on the root's fd 4 (fd 2 of the program only): the root's own fd 2 is
 * /dev/null, so its "Terminated" report of a program killed by SIGTERM goes nowhere.
 */
export const PROGRAM_STDERR_FD = 4

/** First word of the root's set-up line on the status channel. */
export const READY = 'ready'

/** The root's private working directory: <tmp>/ompx-criu-root.XXXXXX (see INIT_SCRIPT). */
export const ROOT_DIR_PREFIX = 'ompx-criu-root.'

/**
 * The root shell; `privateMounts`: of a rank with its own mount namespace, which INIT sets up
 * first (MOUNT_SETUP; a failure ends the launch with its message on the wrapper's stderr).
 * - The program must not hold the status channel, and it is closed in the program's subshell
 *   only: `"$@" 3>&-` would make dash park fd 3 on fd 10 in the root while the program runs,
 *   and the dump would then meet an fd it was not told about.
 * - Without private mounts the root works in a private directory while the program keeps its
 *   own: criu's parasite mounts a procfs at "proc.crtools" RELATIVE to the root's cwd (the tree's
 *   /proc is the host's, not its namespace's), so two ranks sharing a cwd could not be dumped at the same time
 *   ("Can't create a directory (-17)"), nor a rank in a read-only cwd. restoreTree recreates
 *   the directory (mode 0700: criu checks it); the root removes it when it ends.
 * - "ready <dir>" on the status channel says the root is set up and about to start the program:
 *   launchUnderCriu waits for it (polling /proc alone cannot tell the `$(...)` subshells of the
 *   set-up from the program). The exit status follows on a line of its own.
 */
export function initScript(privateMounts: boolean): string {
  const cwd = privateMounts
    ? 'priv= && cd /'
    : `priv=$(mktemp -d "\${TMPDIR:-/tmp}/${ROOT_DIR_PREFIX}XXXXXX" 2>/dev/null) && cd "$priv" || priv=`
  return `${privateMounts ? `${MOUNT_SETUP}\n` : ''}exec 2>/dev/null
trap : HUP INT QUIT PIPE TERM USR1 USR2
here=$(pwd -P)
${cwd}
echo "${READY} $priv" >&${STATUS_FD}
(cd "$here" && exec ${STATUS_FD}>&- 2>&${PROGRAM_STDERR_FD} ${PROGRAM_STDERR_FD}>&- && exec "$@")
s=$?
echo "$s" >&${STATUS_FD}
cd / && [ -n "$priv" ] && rmdir "$priv" 2>/dev/null
exit "$s"`
}

/** The root shell of a rank without a mount namespace of its own (crs_criu_private_mounts 0). */
export const INIT_SCRIPT = initScript(false)

/** argv0 of the root shell, so that `ps` shows what it is. */
export const INIT_NAME = 'ompx-criu-init'

function tool(name: string): string {
  return Bun.which(name) ?? Bun.which(name, { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' }) ?? name
}

/**
 * The argv that runs `argv` under CRIU's rules (see the file comment). With `privateMounts` the
 * rank also gets its own mount namespace, /proc and /dev/shm (mounts.ts), which the root shell
 * mounts before it starts the program.
 */
export function criuLaunchArgv(argv: string[], privateMounts = true): string[] {
  const shell = tool('sh')
  if (!privateMounts) return [tool('unshare'), '--pid', '--fork', '--kill-child', '--', tool('setsid'), shell, '-c', INIT_SCRIPT, INIT_NAME, ...argv]
  const ns = ['--pid', '--fork', '--mount', '--propagation', 'private', '--ipc', '--kill-child']
  return [tool('unshare'), ...ns, '--', tool('setsid'), shell, '-c', initScript(true), INIT_NAME, ...argv]
}

/** Is `pid` the tree root yet: a session leader running the init shell (not still `setsid`)? */
export function isTreeRoot(pid: number): boolean {
  try {
    // `sh -c INIT ompx-criu-init ...`: INIT_NAME is exactly argv[3]. It is also in the argv of
    // unshare and setsid, but further on; setsid execs sh right after setsid(), so argv[3]
    // being INIT_NAME also means the root leads its own session.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[3] === INIT_NAME
  } catch {
    return false
  }
}

/** The root's working directory when it is its private one (see INIT_SCRIPT), else null. */
export function privateDirOf(pid: number): string | null {
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`)
    return basename(cwd).startsWith(ROOT_DIR_PREFIX) ? cwd : null
  } catch {
    return null
  }
}

/**
 * The host pid of the tree root under `wrapperPid` (the unshare process), once the root said
 * "ready" and has forked the program. 0 when the wrapper exits first (the program ended at
 * once, or unshare failed).
 */
async function findTreeRoot(wrapperPid: number, status: StatusChannel, timeoutMs = 10_000): Promise<number> {
  let timer: Timer | undefined
  const timeout = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), timeoutMs)))
  const r = await Promise.race([status.ready, timeout])
  clearTimeout(timer)
  if (r === 'timeout') throw new Error(`the criu launch wrapper (pid ${wrapperPid}) did not start the program within ${timeoutMs} ms`)
  if (r === null) return 0
  const root = childrenOf(wrapperPid).find(isTreeRoot) ?? 0
  // The program's fork follows "ready" at once; a dump before it would restore a root that
  // starts the program afresh, so wait for it briefly (unless it has come and gone already).
  for (let i = 0; root && i < 200 && !status.closed() && !childrenOf(root).length; i++) await Bun.sleep(1)
  return root
}

interface StatusChannel {
  /** The root's private dir ('' if it has none) at its "ready" line; null if the channel closed first. */
  ready: Promise<string | null>
  /** Everything the root wrote, once the channel is closed. */
  text: Promise<string>
  closed(): boolean
}

function readStatus(stream: ReadableStream<Uint8Array>): StatusChannel {
  let seen: (dir: string | null) => void = () => {}
  const ready = new Promise<string | null>((res) => (seen = res))
  let closed = false
  const text = (async () => {
    let all = ''
    const dec = new TextDecoder()
    for await (const chunk of stream) {
      all += dec.decode(chunk, { stream: true })
      const first = all.indexOf('\n')
      if (first > 0 && all.startsWith(`${READY} `)) seen(all.slice(READY.length + 1, first).trim())
    }
    closed = true
    seen(null)
    return all
  })()
  return { ready, text, closed: () => closed }
}

export interface CriuLaunchSpec {
  argv: string[]
  cwd?: string
  env?: Record<string, string>
  /** Give the program a stdin the daemon writes to; otherwise /dev/null. */
  stdin?: boolean
  /** Own mount namespace, /proc and /dev/shm (mounts.ts). Default true. */
  privateMounts?: boolean
}

/**
 * Start `spec.argv` under CRIU's rules and resolve once its tree root is known. The returned
 * handle is what dumpTree needs (`pid`) and what the daemon pumps and waits for.
 */
export async function launchUnderCriu(spec: CriuLaunchSpec): Promise<CriuTree> {
  const sub: Subprocess = Bun.spawn(criuLaunchArgv(spec.argv, spec.privateMounts ?? true), {
    cwd: spec.cwd,
    env: spec.env,
    stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  })
  const fd = (n: number) => sub.stdio[n] as unknown as number
  const status = readStatus(Bun.file(fd(STATUS_FD)).stream() as ReadableStream<Uint8Array>)
  const wrapperErr = new Response(sub.stderr as ReadableStream<Uint8Array>).text()
  let root = 0
  let privateDir: string | null = null
  const tree = makeTree({
    rootPid: () => root,
    privateDir: () => privateDir,
    wrapper: {
      pid: sub.pid,
      exited: sub.exited,
      get signalCode() {
        return (sub.signalCode as NodeJS.Signals | null) ?? null
      },
      stderr: wrapperErr,
    },
    stdout: sub.stdout as ReadableStream<Uint8Array>,
    stderr: Bun.file(fd(PROGRAM_STDERR_FD)).stream() as ReadableStream<Uint8Array>,
    stdin: spec.stdin ? (sub.stdin as CriuTree['stdin']) : null,
    status: status.text,
  })
  try {
    root = await findTreeRoot(sub.pid, status)
    privateDir = (await status.ready) || null
  } catch (e) {
    tree.kill('SIGKILL')
    throw e
  }
  return tree
}

/**
 * The tree root for a pid the daemon knows: the root itself, or the process it spawned
 * (unshare at launch, criu after a restore), whose child is the root. Anything else is returned
 * as is, so a tree not started by launchUnderCriu can still be dumped.
 */
export function treeRootOf(pid: number): number {
  if (isTreeRoot(pid)) return pid
  return childrenOf(pid).find(isTreeRoot) ?? pid
}

/** Null when unshare, setsid and sh are here; else which are missing (util-linux, a shell). */
export function launchToolsProblem(): string | null {
  const missing = ['unshare', 'setsid', 'sh', ...MOUNT_TOOLS].filter((t) => tool(t) === t)
  return missing.length ? `missing ${missing.join(', ')} (util-linux, coreutils) needed to start ranks in their own namespaces` : null
}
