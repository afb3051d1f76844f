/**
 * Two questions about a host that look alike and must not be confused:
 * - isOnThisMachine(name): does the name or address reach this machine? "localhost", our
 *   hostname, ::1 and every 127.x.x.x, so simulated nodes (127.0.1.N) too. Used to pick the
 *   listening address and the launcher that can start a daemon here.
 * - isHnpHost(node): is this node the HNP's own host, served in-process without a daemon? Only
 *   by name; a simulated node (its own 127.0.1.N address, or `launcher=local` in a hostfile) is
 *   on this machine but gets its own `ompx orted`, so it is not the HNP's host.
 */
import { hostname } from 'node:os'
import type { NodeInfo } from './job'

const names = new Set(['localhost', 'localhost.localdomain', '127.0.0.1', '::1', '[::1]'])

export function isOnThisMachine(name: string): boolean {
  const n = name.trim().toLowerCase()
  const self = hostname().toLowerCase()
  if (n === 'localhost' || n === 'localhost.localdomain' || n === self || n === self.split('.')[0]) return true
  if (n === '::1' || n === '[::1]') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(n)
}

export function isHnpHost(node: NodeInfo): boolean {
  if (node.address || node.launcher) return false
  const h = hostname()
  return names.has(node.name) || node.name === h || node.name === h.split('.')[0]
}
