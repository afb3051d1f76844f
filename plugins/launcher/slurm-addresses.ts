/**
 * Where each node of a Slurm job is reached: its NodeAddr, as slurmctld knows it. A daemon that
 * srun starts learns only its node's NAME (SLURMD_NODENAME), and on clusters where several node
 * names share one host (our three-slurmd test cluster, multiple-slurmd setups) or where NodeAddr
 * is a dedicated interface, the name does not say which address is the node's. So the launcher
 * asks once for the whole list (one `scontrol` RPC, not one per daemon) and hands the map to the
 * daemons on the srun line (`--bind-map n1=10.0.0.1,n2=...`); each picks its own entry.
 */
import { compressNodelist } from '../../src/runtime/slurm-env'

/** `NodeName=n1 ... NodeAddr=127.0.1.1 ...` lines (scontrol -o) -> name -> address. */
export function parseNodeAddresses(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const name = /(?:^|\s)NodeName=(\S+)/.exec(line)?.[1]
    const addr = /(?:^|\s)NodeAddr=(\S+)/.exec(line)?.[1]
    if (name && addr && addr !== '(null)') out.set(name, addr)
  }
  return out
}

/** The `--bind-map` value for these nodes: only entries whose address says more than the name. */
export function bindMapValue(names: string[], addrs: Map<string, string>): string | undefined {
  const pairs = names.filter((n) => addrs.has(n) && addrs.get(n) !== n).map((n) => `${n}=${addrs.get(n)}`)
  return pairs.length > 0 ? pairs.join(',') : undefined
}

/**
 * Ask slurmctld for the nodes' addresses. Best effort: without scontrol, or when it fails, the
 * map is empty and each daemon advertises what its own host name resolves to.
 */
export async function lookupNodeAddresses(
  names: string[],
  env: Record<string, string | undefined>,
  debug: (msg: string) => void,
): Promise<Map<string, string>> {
  const scontrol = Bun.which('scontrol', { PATH: env.PATH ?? '' })
  if (!scontrol || names.length === 0) return new Map()
  try {
    const sub = Bun.spawn([scontrol, 'show', 'node', '--oneliner', compressNodelist(names)], { env: env as Record<string, string>, stdout: 'pipe', stderr: 'pipe' })
    const [text, err, code] = await Promise.all([new Response(sub.stdout).text(), new Response(sub.stderr).text(), sub.exited])
    if (code !== 0) {
      debug(`scontrol show node failed (exit ${code}): ${err.trim()}; daemons advertise their host's address`)
      return new Map()
    }
    return parseNodeAddresses(text)
  } catch (e) {
    debug(`scontrol show node: ${(e as Error).message}`)
    return new Map()
  }
}
