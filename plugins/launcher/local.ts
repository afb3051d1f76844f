/**
 * The `local` launcher: every node is on this machine. The HNP serves this host itself; each
 * simulated node (hostfile `launcher=local`, `--launcher local`, or a 127.x address) gets its own
 * `ompx orted` bound to its own loopback address 127.0.1.N, talking to the HNP over TCP exactly
 * as a remote daemon would. That makes it the faithful test topology for everything multi-node.
 */
import { isOnThisMachine } from '../../src/runtime/hosts'
import { ortedArgv, spawnDaemon } from './common'
import { definePlugin } from '../../src/plugins/types'
import type { NodeInfo } from '../../src/runtime/job'

/** Loopback address for a simulated node: its own if it has one, else 127.0.1.<index+1>. */
export function simulatedAddress(node: NodeInfo, index: number): string {
  if (node.address) return node.address
  if (/^127\.\d+\.\d+\.\d+$/.test(node.name)) return node.name
  return `127.0.1.${index + 1}`
}

export default definePlugin(() => ({
  kind: 'launcher',
  name: 'local',
  priority: 10,
  description: 'This machine: one ompx orted per simulated node, each on its own 127.0.1.N address',
  accepts: (nodes) => nodes.every((n) => n.launcher === 'local' || isOnThisMachine(n.address ?? n.name)),
  async launch(req) {
    return req.nodes.map((node, i) => {
      const address = simulatedAddress(node, i)
      node.address = address
      return spawnDaemon({
        node: node.name,
        argv: ortedArgv(req.execPath, req, { ...node, address }),
        secret: req.secret,
        env: { ...process.env, ...req.env },
      })
    })
  },
}))
