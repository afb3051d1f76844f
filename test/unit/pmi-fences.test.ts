/**
 * Node fences joined by the HNP's app services (one message per node per fence), case by case
 * (the e2e tests in test/e2e/pmi-mpich.test.ts drive them through real PMI connections; the name
 * service and spawn requests are test/unit/dpm.test.ts).
 */
import { describe, expect, test } from 'bun:test'
import { NodeFence } from '../../src/orted/pmi/node-fence'
import { AppServices } from '../../src/hnp/snapc/app-services'
import type { NodeToSnapc } from '../../src/wire/messages'

describe('fences: one message per node, joined by the app services', () => {
  test('2 nodes x 2 ranks: each node reports once, with its puts; every rank sees every put after', () => {
    const toHnp: NodeToSnapc[] = []
    const nodes = { a: [0, 1], b: [2, 3] }
    const fences = Object.fromEntries(Object.entries(nodes).map(([n, ranks]) => [n, new NodeFence('1', () => ranks, (m) => toHnp.push(m))]))
    const services = new AppServices({
      size: 4,
      reply: () => {},
      checkpoint: () => Promise.reject(new Error('unused')),
      checkpointRunning: () => false,
      migrate: () => Promise.reject(new Error('unused')),
      fenceDone: (node, seq, ok, kv) => fences[node]!.done({ t: 'hnp.fence', jobid: '1', seq, ok, kv }),
    })
    const released: number[] = []
    for (const [node, ranks] of Object.entries(nodes)) {
      for (const r of ranks) {
        expect(fences[node]!.put(`card-${r}`, `v${r}`)).toBeNull()
        fences[node]!.enter(r, () => released.push(r))
      }
    }
    expect(toHnp.map((m) => m.t)).toEqual(['orted.fence', 'orted.fence'])
    expect(released).toEqual([])
    for (const [i, m] of toHnp.entries()) if (m.t === 'orted.fence') services.fence(i === 0 ? 'a' : 'b', m)
    expect(released.sort()).toEqual([0, 1, 2, 3])
    for (const f of Object.values(fences)) expect([0, 1, 2, 3].map((r) => f.cache.get(`card-${r}`))).toEqual(['v0', 'v1', 'v2', 'v3'])
    expect(services.kvSize).toBeGreaterThan(0)
  })
})
