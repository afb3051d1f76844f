/**
 * Which launcher starts the daemons: the one named (--launcher / --mca launcher), else the
 * highest-priority launcher that accepts every node (slurm inside an allocation, local for this
 * host and simulated nodes, ssh for the rest).
 */
import { ActionableError } from '../../errors'
import type { Registry } from '../../plugins/registry'
import type { LauncherPlugin } from '../../plugins/types'
import type { NodeInfo } from '../../runtime/job'
import { isHnpHost } from '../../runtime/hosts'

export function chooseLauncher(registry: Registry, nodes: NodeInfo[], named?: string): LauncherPlugin {
  const names = nodes.map((n) => n.name).join(', ')
  if (named) {
    const launcher = registry.select('launcher', named)
    if (!launcher.accepts(nodes)) {
      const why = launcher.refusal?.(nodes)
      if (why) throw new ActionableError(`the ${named} launcher cannot start daemons: ${why}`)
      throw new ActionableError(`the ${named} launcher cannot start daemons on ${names}; see 'ompx plugins --kind launcher'`)
    }
    return launcher
  }
  const fit = registry
    .list('launcher')
    .map((e) => e.plugin)
    .sort((a, b) => b.priority - a.priority)
    .find((l) => l.accepts(nodes))
  if (!fit) throw new ActionableError(`no launcher can start daemons on ${names}; choose one with --launcher`)
  return fit
}

/**
 * `--launcher local` turns every node that is not this host into a simulated node: mark it so
 * the local launcher gives it a loopback address and a daemon of its own.
 */
export function markSimulated(nodes: NodeInfo[], launcher: string | undefined): void {
  if (launcher !== 'local') return
  // This host itself stays in-process: `ompx restart` of a job that ran here passes the saved
  // launcher (local) and this host's name, which must not cost a daemon.
  for (const n of nodes) if (!isHnpHost(n)) n.launcher ??= 'local'
}
