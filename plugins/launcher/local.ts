/**
 * The `local` launcher: every node of the allocation is this machine. For a single node the
 * daemon runs inside `ompx run` itself; simulated multi-node topologies (one daemon per
 * loopback address) build on this in the multi-node runtime.
 */
import { isLocalHost } from '../../src/runtime/allocation'
import { definePlugin } from '../../src/plugins/types'

export default definePlugin(() => ({
  kind: 'launcher',
  name: 'local',
  priority: 10,
  description: 'Daemons on this machine (ranks forked by the in-process node daemon)',
  accepts: (nodes) => nodes.every((n) => isLocalHost(n.address ?? n.name)),
}))
