/**
 * A process tree running under CRIU's rules, as the daemon sees it: the same handle whether the
 * tree was just launched (launch.ts) or restored from images (restore.ts), so a restored rank is
 * pumped, signalled and waited for exactly like a spawned one.
 *
 * Layout (see launch.ts): the process ompx started (`unshare`, or `criu restore` after a restore)
 * -> the tree root, pid 1 of its own pid namespace and leader of its own session/process group
 * (a small `sh` that runs the program and reports its status) -> the program.
 */
import type { FileSink } from 'bun'
import { readFileSync, rmdirSync } from 'node:fs'
import { constants } from 'node:os'

export interface TreeExit {
  /** Exit code, or null when a signal ended the program. */
  code: number | null
  signal: NodeJS.Signals | null
  /** Set when criu failed after resuming the tree (it then kills it): the reason, with the log. */
  error?: string
}

export interface CriuTree {
  /** Host pid of the tree root (the namespace's init): what dumpTree takes, and its process group. */
  readonly pid: number
  /** Host pid of what ompx spawned (unshare / criu restore). Killing it kills the tree (PDEATHSIG). */
  readonly wrapperPid: number
  readonly stdout: ReadableStream<Uint8Array>
  readonly stderr: ReadableStream<Uint8Array>
  /** The program's stdin when it was asked for, else null (/dev/null). */
  readonly stdin: Pick<FileSink, 'write' | 'flush' | 'end'> | null
  /** Resolves once the tree is gone, with the program's exit status. */
  readonly exited: Promise<TreeExit>
  /** Signal the tree's process group (job control: TERM, KILL, STOP, CONT, INT). */
  kill(sig?: NodeJS.Signals): void
  /** Signal the program only (the root's children), as a shell delivers USR1/USR2. */
  signalProgram(sig: NodeJS.Signals): void
}

const SIGNAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name as NodeJS.Signals]),
)

/**
 * The root shell reports `$?` of the program: 128+N means signal N, as every shell reports it
 * (a program that itself exits with 129..192 is indistinguishable; docs/criu.md).
 */
export function statusToExit(status: number): TreeExit {
  const sig = status > 128 ? SIGNAMES.get(status - 128) : undefined
  return sig ? { code: null, signal: sig } : { code: status, signal: null }
}

/**
 * Parse what the root wrote on its status channel: "ready <dir>" at start (launch.ts), then the
 * program's `$?` on a line of its own; null when no status came (the root was killed).
 */
export function parseStatus(text: string): TreeExit | null {
  const code = text.split('\n').filter((l) => /^\d+$/.test(l.trim())).pop()
  return code === undefined ? null : statusToExit(Number(code))
}

/** Children of `pid` (host pids), from /proc; empty when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir)
  } catch {
    // Gone already, or not empty (then it is not ours to remove).
  }
}

function signal(target: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(target, sig)
    return true
  } catch {
    return false // ESRCH: gone already
  }
}

export interface TreeParts {
  rootPid: () => number
  wrapper: {
    pid: number
    exited: Promise<number>
    signalCode: NodeJS.Signals | null
    /** The wrapper's own messages (unshare/setsid errors), for when the tree never started. */
    stderr?: Promise<string>
  }
  stdout: ReadableStream<Uint8Array>
  stderr: ReadableStream<Uint8Array>
  stdin: CriuTree['stdin']
  /** Everything the root wrote on its status channel, once the channel is closed. */
  status: Promise<string>
  /** The root's private directory, removed once the tree is gone (a killed root cannot). */
  privateDir?: () => string | null
}

/** Assemble the handle from what launch or restore set up. */
export function makeTree(parts: TreeParts): CriuTree {
  const { wrapper } = parts
  const wrapperErr = wrapper.stderr?.catch(() => '') ?? Promise.resolve('')
  const exited = Promise.all([wrapper.exited, parts.status.catch(() => ''), wrapperErr]).then(([code, text, err]): TreeExit => {
    const reported = parseStatus(text)
    if (reported) return reported
    // No status: the root was killed (SIGKILL is the only signal it cannot trap), or it never
    // started and the wrapper's own exit and message say why (e.g. unshare failing).
    if (parts.rootPid() > 0) return { code: null, signal: 'SIGKILL' }
    const exit: TreeExit = { code: wrapper.signalCode ? null : code, signal: wrapper.signalCode ?? null }
    const why = err.trim().split('\n').pop()
    return why ? { ...exit, error: `the criu launch wrapper failed: ${why}` } : exit
  })
  void exited.then(() => {
    const dir = parts.privateDir?.()
    if (dir) rmdirQuietly(dir)
  })
  return {
    get pid() {
      return parts.rootPid()
    },
    wrapperPid: wrapper.pid,
    stdout: parts.stdout,
    stderr: parts.stderr,
    stdin: parts.stdin,
    exited,
    kill(sig = 'SIGTERM') {
      const root = parts.rootPid()
      // Before the root is known the wrapper's group is all there is; a KILL of the wrapper
      // also takes the tree, through the root's parent-death signal.
      if (!(root > 0 && signal(-root, sig))) signal(-wrapper.pid, sig)
    },
    signalProgram(sig) {
      const root = parts.rootPid()
      if (root > 0) for (const child of childrenOf(root)) signal(child, sig)
    },
  }
}
