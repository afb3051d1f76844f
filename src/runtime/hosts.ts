/**
 * Which nodes the HNP serves in-process: the ones that are this host by name. Simulated nodes
 * (127.0.1.N addresses, hostfile `launcher=local` entries) are on this machine too, but each
 * gets its own `ompx orted`, so they are deliberately not "this host" here.
 */
import { hostname } from 'node:os'
import type { NodeInfo } from './job'

const names = new Set(['localhost', 'localhost.localdomain', '127.0.0.1', '::1', '[::1]'])

export function isThisHost(node: NodeInfo): boolean {
  if (node.address || node.launcher) return false
  const h = hostname()
  return names.has(node.name) || node.name === h || node.name === h.split('.')[0]
}
