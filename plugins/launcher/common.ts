/**
 * Starting a daemon-side process the way every launcher must (local orted, ssh, srun):
 *
 * - the job secret goes in as the FIRST LINE of the child's stdin, never argv or env, so it does
 *   not show up in `ps`, /proc/<pid>/environ or logs;
 * - stdin then stays open for the daemon's whole life: its EOF is how a daemon learns that the
 *   HNP is gone (ssh and srun forward that EOF), so even a SIGKILLed HNP leaves no orphans;
 * - stdout and stderr are always drained (a full pipe would block the daemon) and their last lines
 *   are kept, so the HNP can say "node n3: ssh failed: Permission denied (publickey)".
 */
import type { DaemonLaunchRequest, DaemonProcess } from '../../src/plugins/types'
import type { NodeInfo } from '../../src/runtime/job'

export interface SpawnDaemonOptions {
  /** Node name(s) for messages. */
  node: string
  argv: string[]
  /** Job secret, hex (anything else could smuggle a newline into the daemon's stdin). */
  secret: string
  /** The child's whole environment (default: ours). */
  env?: Record<string, string | undefined>
  cwd?: string
  /** Own session (default true): a terminal's Ctrl-C then reaches the HNP only, which decides. */
  detached?: boolean
  /** `ready` resolves when stdout carries this exact line (e.g. a remote shell saying it is in). */
  readyMarker?: string
  /** Lines not worth keeping in the tail (e.g. ssh's "Warning: Permanently added ..."). */
  ignoreLine?: (line: string) => boolean
  /** Output lines kept for error messages (default 20). */
  tailLines?: number
}

export interface SpawnedDaemon extends DaemonProcess {
  /** True once `readyMarker` was seen (at once without one); false if the process ended first. */
  ready: Promise<boolean>
  /** EOF on the daemon's stdin without a signal: the polite "the HNP is gone". */
  closeStdin(): void
}

const HEX = /^[0-9a-f]+$/i
const MAX_LINE = 500

/** The last N lines of a child's output (stdout and stderr interleaved, as they arrive). */
class Tail {
  private lines: string[] = []
  constructor(
    private max: number,
    private ignore?: (line: string) => boolean,
  ) {}
  push(line: string): void {
    if (line.trim() === '' || this.ignore?.(line)) return
    this.lines.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}...` : line)
    if (this.lines.length > this.max) this.lines.shift()
  }
  text(): string {
    return this.lines.join('\n')
  }
}

async function pumpLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const dec = new TextDecoder()
  let partial = ''
  try {
    for await (const chunk of stream) {
      const lines = (partial + dec.decode(chunk, { stream: true })).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) onLine(l.replace(/\r$/, ''))
    }
  } catch {
    // The pipe broke: what we got is all there is.
  }
  if (partial) onLine(partial)
}

export function spawnDaemon(opts: SpawnDaemonOptions): SpawnedDaemon {
  if (!HEX.test(opts.secret)) throw new Error('the job secret must be a non-empty hex string')
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(opts.env ?? process.env)) if (v !== undefined) env[k] = v
  const tail = new Tail(opts.tailLines ?? 20, opts.ignoreLine)
  let markReady: (seen: boolean) => void = () => {}
  const ready = opts.readyMarker ? new Promise<boolean>((r) => (markReady = r)) : Promise.resolve(true)

  const sub = Bun.spawn(opts.argv, {
    cwd: opts.cwd,
    env,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    detached: opts.detached ?? true,
  })
  let stdinOpen = true
  const closeStdin = () => {
    if (!stdinOpen) return
    stdinOpen = false
    try {
      void Promise.resolve(sub.stdin.end()).catch(() => {})
    } catch {
      // Already closed by the other side.
    }
  }
  try {
    sub.stdin.write(`${opts.secret}\n`)
    void Promise.resolve(sub.stdin.flush()).catch(() => {})
  } catch {
    // The child died at once (EPIPE); `exited` and the tail tell why.
  }

  const pumps = Promise.all([
    pumpLines(sub.stdout, (line) => (opts.readyMarker && line === opts.readyMarker ? markReady(true) : tail.push(line))),
    pumpLines(sub.stderr, (line) => tail.push(line)),
  ])
  const exited = sub.exited.then(async () => {
    stdinOpen = false
    // The pipes close with the child, unless something it started still holds them.
    await Promise.race([pumps, Bun.sleep(300)])
    markReady(false)
    return sub.signalCode ? null : sub.exitCode
  })
  return {
    node: opts.node,
    pid: sub.pid,
    exited,
    ready,
    stderrTail: () => tail.text(),
    closeStdin,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      closeStdin()
      if (sub.exitCode !== null || sub.signalCode) return
      try {
        sub.kill(signal)
      } catch {
        // Gone meanwhile.
      }
    },
  }
}

/**
 * `<agent> orted --hnp URI --node NAME [--bind ADDR] <ortedArgs>`. With `nodeFromEnv` (one
 * command started on many nodes, as srun does) the daemon reads its node name from that
 * variable instead, and its address from a map of all the nodes':
 * `--node-from-env SLURMD_NODENAME --bind-map n1=10.0.0.1,n2=10.0.0.2`.
 */
export function ortedArgv(
  agent: string,
  req: Pick<DaemonLaunchRequest, 'hnpUri' | 'ortedArgs'>,
  node: NodeInfo | { nodeFromEnv: string; bindMap?: string },
): string[] {
  const where = 'nodeFromEnv' in node
    ? ['--node-from-env', node.nodeFromEnv, ...(node.bindMap ? ['--bind-map', node.bindMap] : [])]
    : ['--node', node.name, ...(node.address ? ['--bind', node.address] : [])]
  return [agent, 'orted', '--hnp', req.hnpUri, ...where, ...req.ortedArgs]
}

/** Run `fn` on every item with at most `limit` at a time; results keep the items' order. */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return out
}
