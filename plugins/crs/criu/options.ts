/**
 * The criu options users choose (crs_criu_* parameters), shared by dump and restore: most of
 * them must be given to both, so dump records them in its info and restore repeats them.
 */

export interface CriuOptions {
  /** Established TCP connections (--tcp-established, with a network lock). */
  tcpEstablished?: boolean
  /** Unix datagram sockets whose peer is outside the tree (--ext-unix-sk). */
  extUnixSk?: boolean
  /** The tree's session or tty is outside it (--shell-job); not needed for launchUnderCriu trees. */
  shellJob?: boolean
  /** More criu arguments, given to both dump and restore (e.g. ["--file-locks"]). */
  extraArgs?: string[]
  /** criu -v level, 0-4 (4 = debug). */
  logLevel?: number
}

export const DEFAULT_LOG_LEVEL = 4

export function logLevelOf(o: CriuOptions): number {
  const v = o.logLevel ?? DEFAULT_LOG_LEVEL
  if (!Number.isInteger(v) || v < 0 || v > 4) throw new Error(`criu log level must be 0-4, not ${o.logLevel}`)
  return v
}

/**
 * The network lock method for --tcp-established. criu's default (iptables) needs the iptables
 * binaries, which minimal systems lack ("exited, status=127"); criu has nftables built in.
 */
export function networkLock(extraArgs: string[] = []): string | null {
  if (extraArgs.some((a) => a === '--network-lock' || a.startsWith('--network-lock='))) return null
  return Bun.which('iptables-restore') ? null : 'nftables'
}

/** Arguments for the options that dump and restore share. */
export function sharedArgs(o: CriuOptions, lock: string | null): string[] {
  const args: string[] = []
  if (o.tcpEstablished) {
    args.push('--tcp-established')
    if (lock) args.push('--network-lock', lock)
  }
  if (o.extUnixSk) args.push('--ext-unix-sk')
  if (o.shellJob) args.push('--shell-job')
  return [...args, ...(o.extraArgs ?? [])]
}

/** A boolean parameter value: true/1/yes/on. */
export function flag(value: string | undefined): boolean {
  return /^(1|true|yes|on)$/i.test(value?.trim() ?? '')
}
