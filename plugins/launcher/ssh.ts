/**
 * The `ssh` launcher: one `ssh host <agent> orted ...` per node, like Open MPI's plm/rsh.
 *
 * The job secret rides on ssh's stdin (first line), which ssh forwards to the remote daemon and
 * keeps open; when the HNP goes away, ssh's stdin hits EOF (or ssh dies and sshd closes the
 * session), so the remote daemon sees EOF and cleans up: no orphans on the remote nodes.
 * ssh's own failures ("Permission denied", "Could not resolve hostname") end the ssh process
 * early and stay in the DaemonProcess's stderr tail for the HNP's message.
 */
import { statSync } from 'node:fs'
import { basename } from 'node:path'
import { ActionableError } from '../../src/errors'
import { isOnThisMachine } from '../../src/runtime/hosts'
import type { NodeInfo } from '../../src/runtime/job'
import { mapBounded, ortedArgv, spawnDaemon } from './common'
import { shellQuote, splitWords } from '../../src/util/shell'
import type { SpawnedDaemon } from './common'
import { definePlugin } from '../../src/plugins/types'
import type { DaemonLaunchRequest, DaemonProcess, HostApi } from '../../src/plugins/types'

/** Printed by the remote shell before it execs the daemon: "the ssh connection is up". */
export const SSH_READY = 'ompx-ssh-ready'
const CONNECT_TIMEOUT = 10
const NOISE = /^Warning: Permanently added .* to the list of known hosts/

export interface SshOptions {
  /** The ssh command and its options, as words ("ssh -p 2222" -> ["ssh", "-p", "2222"]). */
  agent: string[]
  extraArgs: string[]
  /** Remote path of the ompx binary; undefined = the local path (same install everywhere). */
  launchAgent?: string
  /** Copy the binary to the remote /tmp first and run that copy. */
  preload: boolean
  /** ssh connections being set up at once. */
  concurrency: number
}

export function sshOptions(host: Pick<HostApi, 'param' | 'ActionableError'>): SshOptions {
  const words = (key: string) => {
    try {
      return splitWords(host.param(key) ?? '')
    } catch (err) {
      throw new host.ActionableError(`parameter ${key}: ${(err as Error).message}`)
    }
  }
  const agent = words('launcher_ssh_agent')
  const concurrency = Number(host.param('launcher_ssh_concurrency') || 32)
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new host.ActionableError(`parameter launcher_ssh_concurrency must be a whole number >= 1, got "${host.param('launcher_ssh_concurrency')}"`)
  }
  return {
    agent: agent.length ? agent : ['ssh'],
    extraArgs: words('launcher_ssh_args'),
    launchAgent: host.param('launch_agent') || undefined,
    preload: /^(1|true|yes|on)$/i.test(host.param('preload_binary')?.trim() ?? ''),
    concurrency,
  }
}

/**
 * The command line the remote shell runs: say we are in, then become the daemon (exec, so the
 * daemon is sshd's direct child and gets stdin EOF first-hand). Variables go through `env`
 * because ssh forwards none by default; every word is single-quoted for the remote shell.
 */
export function remoteCommand(argv: string[], env: Record<string, string>, marker = SSH_READY): string {
  const vars = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`cannot pass variable "${k}" to a remote daemon`)
    return shellQuote(`${k}=${v}`)
  })
  const run = [...(vars.length ? ['env', ...vars] : []), ...argv.map(shellQuote)].join(' ')
  return `echo ${marker}; exec ${run}`
}

/** A host name starting with "-" would be read by ssh as an option: refuse it, as a user error. */
export function checkSshTarget(host: string): void {
  if (host.startsWith('-')) {
    throw new ActionableError(`ssh launcher: host name "${host}" starts with "-", which ssh would read as an option; rename the host or give it address=IP in a hostfile`)
  }
}

/** `ssh [user options] -o BatchMode=yes -o ConnectTimeout=10 host 'command'`. */
export function sshArgv(opts: Pick<SshOptions, 'agent' | 'extraArgs'>, host: string, command: string): string[] {
  checkSshTarget(host)
  // ssh keeps the first value given for an option, so the user's come first and win over ours.
  // Non-ssh agents (rsh, wrappers) get no -o options they might not understand.
  const ours = /ssh/.test(basename(opts.agent[0] ?? '')) ? ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${CONNECT_TIMEOUT}`] : []
  return [...opts.agent, ...opts.extraArgs, ...ours, host, command]
}

/**
 * Remote sh scripts for preload_binary: `check` prints "reuse <path>" when a copy of the same
 * size and mtime is there, else "need <path>"; `install` reads the binary from stdin and renames
 * it into place (atomic, so a concurrent launch never runs half a file). The directory is
 * /tmp/ompx-preload-<uid>, 0700, and must be ours and not a symlink: /tmp is shared. One line
 * (no newlines) because csh, a possible login shell, rejects newlines inside quotes.
 */
export function preloadScripts(size: number, mtime: number): { check: string; install: string } {
  const setup = [
    'd=/tmp/ompx-preload-$(id -u)',
    'mkdir -p -m 700 "$d" 2>/dev/null',
    '{ [ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ]; } || { echo "ompx preload: $d is not a private directory of this user" >&2; exit 3; }',
    'chmod 700 "$d" || exit 3',
    `f="$d/ompx-${size}-${mtime}"`,
  ]
  const same = `[ "$(stat -c '%s %Y' "$f" 2>/dev/null)" = "${size} ${mtime}" ]`
  return {
    check: [...setup, `if ${same}; then echo "reuse $f"; else echo "need $f"; fi`].join('; '),
    install: [
      ...setup,
      't="$f.tmp.$$"',
      `cat > "$t" && chmod 700 "$t" && touch -d @${mtime} "$t" && mv -f "$t" "$f" || { rm -f "$t"; exit 4; }`,
      `${same} || { echo "ompx preload: $f is incomplete" >&2; exit 4; }`,
      'echo "copied $f"',
    ].join('; '),
  }
}

interface Ran {
  pid: number
  code: number | null
  out: string
  err: string
}

async function runSsh(argv: string[], stdinFile?: string): Promise<Ran> {
  const sub = Bun.spawn(argv, { stdin: stdinFile ? Bun.file(stdinFile) : 'ignore', stdout: 'pipe', stderr: 'pipe', detached: true })
  const [out, err] = await Promise.all([new Response(sub.stdout).text(), new Response(sub.stderr).text()])
  const code = await sub.exited
  return { pid: sub.pid, code, out, err: err.split('\n').filter((l) => l && !NOISE.test(l)).join('\n') }
}

/** A DaemonProcess for a node whose launch already failed (e.g. the preload copy). */
function failed(node: string, ran: Ran, what: string): DaemonProcess {
  const tail = `${what} failed (exit ${ran.code}): ${ran.err.trim() || ran.out.trim() || 'no message'}`
  return { node, pid: ran.pid, exited: Promise.resolve(ran.code ?? 255), stderrTail: () => tail, kill: () => {} }
}

/** Copy the binary to `host` unless an identical copy is there; the remote path, or a failure. */
async function preload(opts: SshOptions, node: string, target: string, execPath: string, log: HostApi['log']): Promise<string | DaemonProcess> {
  const st = statSync(execPath)
  const scripts = preloadScripts(st.size, Math.floor(st.mtimeMs / 1000))
  const remote = (script: string) => sshArgv(opts, target, `sh -c ${shellQuote(script)}`)
  const check = await runSsh(remote(scripts.check))
  const found = /^(reuse|need) (\/\S+)$/m.exec(check.out)
  if (check.code !== 0 || !found) return failed(node, check, 'preload check over ssh')
  if (found[1] === 'reuse') {
    log.debug(`${node}: reusing preloaded ${found[2]}`)
    return found[2]!
  }
  log.debug(`${node}: copying ${execPath} (${st.size} bytes) to ${found[2]}`)
  const copy = await runSsh(remote(scripts.install), execPath)
  const done = /^copied (\/\S+)$/m.exec(copy.out)
  return copy.code === 0 && done ? done[1]! : failed(node, copy, 'preload copy over ssh')
}

export async function launchSsh(req: DaemonLaunchRequest, opts: SshOptions, log: HostApi['log']): Promise<DaemonProcess[]> {
  if (!Bun.which(opts.agent[0]!, { PATH: process.env.PATH ?? '' })) {
    throw new Error(`ssh launcher: "${opts.agent[0]}" not found; install openssh-client or set launcher_ssh_agent`)
  }
  // Every node is checked before the first ssh starts, so a bad name launches nothing.
  for (const node of req.nodes) checkSshTarget(node.address ?? node.name)
  const launchOne = async (node: NodeInfo): Promise<DaemonProcess> => {
    // A node's address, when it has one, is where its daemon binds: an address of that node.
    const target = node.address ?? node.name
    let agent = opts.launchAgent ?? req.execPath
    if (opts.preload) {
      const got = await preload(opts, node.name, target, req.execPath, log)
      if (typeof got !== 'string') return got
      agent = got
    }
    const command = remoteCommand(ortedArgv(agent, req, node), req.env)
    const d: SpawnedDaemon = spawnDaemon({
      node: node.name,
      argv: sshArgv(opts, target, command),
      secret: req.secret,
      readyMarker: SSH_READY,
      ignoreLine: (l) => NOISE.test(l),
    })
    // Hold the concurrency slot until the connection is up (or failed), so a thousand nodes
    // do not hit their sshds, or one sshd's MaxStartups, all at the same moment.
    // (A cleared timer, not Bun.sleep: a pending sleep would keep a short `ompx run` alive.)
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([d.ready, new Promise((r) => (timer = setTimeout(r, (CONNECT_TIMEOUT + 5) * 1000)))])
    clearTimeout(timer)
    return d
  }
  return mapBounded(req.nodes, opts.concurrency, launchOne)
}

/**
 * This machine by one of its own names. Other loopback addresses (127.0.1.N) stay acceptable:
 * they are simulated nodes, reachable over ssh when an sshd listens there (the test sshd does);
 * by default the `local` launcher, of higher priority, serves them anyway.
 */
function isOwnName(name: string): boolean {
  return isOnThisMachine(name) && !(/^127\./.test(name) && name !== '127.0.0.1')
}

const PARAMS = [
  { key: 'launcher_ssh_agent', default: 'ssh', description: 'ssh command for starting remote daemons, options allowed (e.g. "ssh -p 2222 -i ~/.ssh/cluster")' },
  { key: 'launcher_ssh_args', default: '', description: 'Extra arguments for every ssh call, before the host name (e.g. "-o StrictHostKeyChecking=accept-new")' },
  { key: 'launcher_ssh_concurrency', type: 'number' as const, integer: true, min: 1, max: 1024, default: '32', description: 'ssh connections set up at the same time when launching many nodes' },
  { key: 'launch_agent', default: '', description: 'Path of the ompx binary on the remote nodes (empty: the same path as here)' },
  { key: 'preload_binary', type: 'bool' as const, default: '0', description: 'Copy the ompx binary to /tmp/ompx-preload-<uid>/ on each remote node first (reused while unchanged)' },
]

export default definePlugin((host) => ({
  kind: 'launcher',
  name: 'ssh',
  priority: 5,
  description: 'Daemons on remote hosts over ssh (secret on ssh stdin; stdin EOF stops them)',
  params: PARAMS,
  accepts: (nodes) => nodes.length > 0 && nodes.every((n) => !isOwnName(n.name)),
  launch: (req) => launchSsh(req, sshOptions(host), host.log),
}))
