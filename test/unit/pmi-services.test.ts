/**
 * Node fences joined by the HNP's app services (one message per node per fence), the HNP's name
 * service and the parsing of PMI-1 spawn blocks, case by case (the e2e tests in
 * test/e2e/pmi-mpich.test.ts drive both through real PMI connections).
 */
import { describe, expect, test } from 'bun:test'
import { NameService } from '../../src/hnp/snapc/name-service'
import { spawnBlock } from '../../src/orted/pmi/spawn-block'
import { NodeFence } from '../../src/orted/pmi/node-fence'
import { AppServices } from '../../src/hnp/snapc/app-services'
import type { NodeToSnapc } from '../../src/wire/messages'

describe('name service', () => {
  test('publish, lookup from another job, unpublish only by the publisher, gone with its job', () => {
    const n = new NameService()
    expect(n.request('1', 'publish', 'svc', 'port-a')).toEqual({ ok: true })
    expect(n.request('2', 'publish', 'svc', 'port-b')).toEqual({ ok: false, text: 'service svc is already published by job 1' })
    expect(n.request('2', 'lookup', 'svc')).toEqual({ ok: true, port: 'port-a' })
    expect(n.request('2', 'unpublish', 'svc')).toEqual({ ok: false, text: 'service svc was published by job 1, not this one' })
    n.jobEnded('1')
    expect(n.request('2', 'lookup', 'svc')).toEqual({ ok: false, text: 'service svc is not published' })
  })
  test('empty or oversize names and ports are refused', () => {
    const n = new NameService()
    expect(n.request('1', 'publish', '', 'p').ok).toBe(false)
    expect(n.request('1', 'publish', 'x'.repeat(1025), 'p').ok).toBe(false)
    expect(n.request('1', 'publish', 's', '')).toEqual({ ok: false, text: 'a port must be 1 to 1024 characters' })
  })
})

describe('spawn blocks', () => {
  test("MPICH's lines: arguments keep spaces and '=', preput and info pairs", () => {
    const b = spawnBlock(['nprocs=2', 'execname=./child', 'totspawns=2', 'spawnssofar=1', 'arg1=a b', 'arg2=k=v', 'argcnt=2', 'preput_num=1', 'preput_key_0=PARENT_ROOT_PORT_NAME', 'preput_val_0=tag#0$', 'info_num=1', 'info_key_0=wdir', 'info_val_0=/tmp'])
    expect(b).toEqual({ app: { np: 2, argv: ['./child', 'a b', 'k=v'], info: [['wdir', '/tmp']] }, preput: [['PARENT_ROOT_PORT_NAME', 'tag#0$']], sofar: 1, total: 2 })
  })
  test('what is missing or out of range is named', () => {
    expect(spawnBlock(['execname=x'])).toEqual({ why: 'spawn needs nprocs=1..4096' })
    expect(spawnBlock(['nprocs=1'])).toEqual({ why: 'spawn needs execname=' })
    expect(spawnBlock(['nprocs=1', 'execname=x', 'argcnt=1'])).toEqual({ why: 'spawn: argcnt=1 but arg1 is missing' })
    expect(spawnBlock(['nprocs=1', 'execname=x', 'info_num=1', 'info_key_0=host'])).toEqual({ why: 'spawn: a preput or info key without its value' })
    expect(spawnBlock(['garbage'])).toEqual({ why: 'spawn block line "garbage" is not key=value' })
  })
})

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
