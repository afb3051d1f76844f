/**
 * One rank as its node daemon sees it, whatever started it: a plain Bun.spawn (here), or what a
 * CRS plugin's launch/restore hook returns (crs criu: a process tree in its own pid namespace).
 * The daemon pumps the output, writes stdin, signals and waits for it through this interface
 * only. Plugins get spawnRank through the host API (crs self and none start ranks with it).
 */
import type { FileSink } from 'bun'

/** What starting a rank takes: its command, directory, full environment, and whether it reads stdin. */
export interface SpawnRequest {
  argv: string[]
  cwd: string
  env: Record<string, string>
  stdin: boolean
  /**
   * Give the rank fd 3: one end of a socketpair whose other end is RankProcess.pmiFd (the
   * node's PMI server talks to the rank on it, PMI_FD=3).
   */
  pmiFd?: boolean
}

export interface RankProcessExit {
  /** Exit code, or null when a signal ended the rank. */
  code: number | null
  signal: NodeJS.Signals | null
  /** Why the rank ended abnormally beyond its status (criu failed after resuming it), for its stderr. */
  error?: string
}

export interface RankProcess {
  /** Host pid reported for the rank: what the checkpoint's capture gets. */
  readonly pid: number
  /** Process groups the Reaper must kill if the daemon dies. */
  readonly groups: number[]
  readonly stdout: ReadableStream<Uint8Array>
  readonly stderr: ReadableStream<Uint8Array>
  readonly stdin: Pick<FileSink, 'write' | 'flush' | 'end'> | null
  readonly exited: Promise<RankProcessExit>
  /** Our end of the rank's PMI socketpair, when SpawnRequest.pmiFd asked for one. */
  readonly pmiFd?: number
  /**
   * Job control (TERM, KILL, INT, STOP, CONT) reaches everything the rank forked; user signals
   * (USR1/USR2) reach the program alone, as a shell delivers them.
   */
  signal(sig: NodeJS.Signals): void
  /**
   * The rank's process exited: kill whatever it left behind. The daemon calls it once the output
   * is drained or a short grace after the exit has passed (src/orted/rank-end.ts), maybe twice.
   */
  cleanup(): void
}

export const isUserSignal = (sig: NodeJS.Signals) => sig === 'SIGUSR1' || sig === 'SIGUSR2'

function kill(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig)
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * A plain rank. It leads its own process group (setsid) so a signal reaches everything it forked,
 * and a terminal's Ctrl-C reaches only the daemon: it decides what the ranks get.
 */
export function spawnRank(spec: SpawnRequest): RankProcess {
  const sub = Bun.spawn(spec.argv, {
    cwd: spec.cwd,
    env: spec.env,
    // Bun's "pipe" is a unix socketpair: as a 4th entry it is the rank's fd 3, both ways.
    stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(spec.pmiFd ? (['pipe'] as const) : [])],
    detached: true,
  })
  const stdin = typeof sub.stdin === 'object' && sub.stdin ? (sub.stdin as FileSink) : null
  return {
    pid: sub.pid,
    groups: [sub.pid],
    stdout: sub.stdout,
    stderr: sub.stderr,
    stdin,
    pmiFd: spec.pmiFd ? (sub.stdio[3] as unknown as number) : undefined,
    exited: sub.exited.then(() => {
      const signal = (sub.signalCode as NodeJS.Signals | null) ?? null
      return { code: signal ? null : sub.exitCode, signal }
    }),
    signal: (sig) => kill(isUserSignal(sig) ? sub.pid : -sub.pid, sig),
    // Anything the rank left behind in its process group goes with it.
    cleanup: () => kill(-sub.pid, 'SIGKILL'),
  }
}
