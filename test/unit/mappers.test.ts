/** The four built-in mappers: placements, MPMD, np defaults, oversubscription and max_slots. */
import { describe, expect, test } from 'bun:test'
import slotFactory from '../../plugins/mapper/slot'
import nodeFactory from '../../plugins/mapper/node'
import pprFactory from '../../plugins/mapper/ppr'
import seqFactory from '../../plugins/mapper/seq'
import { ActionableError } from '../../src/errors'
import type { HostApi, MapperPlugin, PluginFactory } from '../../src/plugins/types'
import { buildAllocation } from '../../src/runtime/allocation'
import { assignLocalRanks } from '../../src/runtime/job'
import type { Allocation, AppContext, NodeInfo } from '../../src/runtime/job'
import { spawnRank } from '../../src/runtime/rank-process'

const quiet = () => {}
const host: HostApi = {
  version: 'test',
  log: { info: quiet, warn: quiet, debug: quiet, error: quiet },
  param: () => undefined,
  ActionableError,
  spawnRank,
}
const load = async (f: PluginFactory) => (await f(host)) as MapperPlugin
const mappers = {
  slot: await load(slotFactory),
  node: await load(nodeFactory),
  ppr: await load(pprFactory),
  seq: await load(seqFactory),
}
type Name = keyof typeof mappers

/** "a:2,b:2" -> the allocation -H would give. */
const dashH = (spec: string): Allocation => buildAllocation({ hosts: [spec], defaultSlots: 1 })
/** Hand-built allocation for max_slots and sequences (as a hostfile would give). */
const hosts = (nodes: NodeInfo[], sequence?: string[]): Allocation => ({
  nodes,
  source: 'hostfile h',
  sequence: sequence?.map((name) => ({ name, count: 1 })),
})
/** One app per np; `undefined` = no -np. */
const apps = (...nps: (number | undefined)[]): AppContext[] =>
  nps.map((np, index) => ({ index, np, argv: [`./app${index}`], env: {}, cwd: '/' }))

interface Case {
  label: string
  mapper: Name
  allocation: Allocation
  nps: (number | undefined)[]
  arg?: string
  oversubscribe?: boolean
  /** Node of each rank, space separated; apps split by " | ". */
  want: string
}

/** Render placements as "a a | b b" so a table row shows rank order and app boundaries. */
function render(c: Case): string {
  const placements = mappers[c.mapper].map({ allocation: c.allocation, apps: apps(...c.nps), arg: c.arg, oversubscribe: !!c.oversubscribe })
  placements.forEach((p, i) => expect(p.rank).toBe(i))
  const byApp = c.nps.map((_, app) => placements.filter((p) => p.app === app).map((p) => p.node).join(' '))
  return byApp.join(' | ')
}

function errorOf(c: Case): string {
  try {
    render(c)
  } catch (e) {
    expect(e).toBeInstanceOf(ActionableError)
    expect((e as Error).message).not.toContain('\n')
    return (e as Error).message
  }
  throw new Error('expected an ActionableError')
}

const capped = hosts([
  { name: 'a', slots: 2, maxSlots: 3, slotsGiven: true },
  { name: 'b', slots: 2, maxSlots: 2, slotsGiven: true },
])
const seqAlloc = hosts(
  [
    { name: 'n1', slots: 2, slotsGiven: true },
    { name: 'n2', slots: 1, slotsGiven: true },
    { name: 'n3', slots: 1, slotsGiven: true },
  ],
  ['n1', 'n2', 'n1', 'n3'],
)

const placementCases: Case[] = [
  // slot: fill each node, then the next; apps continue where the previous one stopped
  { label: 'slot fills a node first', mapper: 'slot', allocation: dashH('a:2,b:2'), nps: [3], want: 'a a b' },
  { label: 'slot MPMD 2+2', mapper: 'slot', allocation: dashH('a:2,b:2'), nps: [2, 2], want: 'a a | b b' },
  { label: 'slot MPMD 3+1', mapper: 'slot', allocation: dashH('a:2,b:2'), nps: [3, 1], want: 'a a b | b' },
  { label: 'slot no -np fills the allocation', mapper: 'slot', allocation: dashH('a:2,b:3'), nps: [undefined], want: 'a a b b b' },
  { label: 'slot no -np takes the free slots', mapper: 'slot', allocation: dashH('a:2,b:2'), nps: [1, undefined], want: 'a | a b b' },
  { label: 'slot oversubscribed stays contiguous', mapper: 'slot', allocation: dashH('a:2,b:2'), nps: [6], oversubscribe: true, want: 'a a a b b b' },
  { label: 'slot extra ranks round robin', mapper: 'slot', allocation: dashH('a:2,b:2,c:1'), nps: [7], oversubscribe: true, want: 'a a a b b b c' },
  { label: 'slot extra ranks skip max_slots', mapper: 'slot', allocation: capped, nps: [2, 3], oversubscribe: true, want: 'a a | a b b' },
  // node: round robin, skipping full nodes
  { label: 'node round robin', mapper: 'node', allocation: dashH('a:2,b:2'), nps: [3], want: 'a b a' },
  { label: 'node skips full nodes', mapper: 'node', allocation: dashH('a:1,b:3'), nps: [4], want: 'a b b b' },
  { label: 'node MPMD continues the round', mapper: 'node', allocation: dashH('a:2,b:2,c:2'), nps: [1, 2], want: 'a | b c' },
  { label: 'node no -np fills the allocation', mapper: 'node', allocation: dashH('a:1,b:2'), nps: [undefined], want: 'a b b' },
  { label: 'node oversubscribed keeps going', mapper: 'node', allocation: dashH('a,b'), nps: [5], oversubscribe: true, want: 'a b a b a' },
  {
    label: 'node oversubscribed skips max_slots', mapper: 'node', oversubscribe: true, nps: [4], want: 'a b b b',
    allocation: hosts([{ name: 'a', slots: 1, maxSlots: 1 }, { name: 'b', slots: 1, maxSlots: 3 }]),
  },
  // ppr: N per node, node by node
  { label: 'ppr no -np = N x nodes', mapper: 'ppr', allocation: dashH('a:2,b:2,c:2'), arg: '2:node', nps: [undefined], want: 'a a b b c c' },
  { label: 'ppr -np fills in node order', mapper: 'ppr', allocation: dashH('a:2,b:2,c:2'), arg: '2:node', nps: [3], want: 'a a b' },
  { label: 'ppr MPMD shares the budget', mapper: 'ppr', allocation: dashH('a:2,b:2'), arg: '2:node', nps: [1, undefined], want: 'a | a b b' },
  { label: 'ppr oversubscribed', mapper: 'ppr', allocation: dashH('a:2,b:2'), arg: '3:node', nps: [undefined], oversubscribe: true, want: 'a a a b b b' },
  // seq: one rank per hostfile line
  { label: 'seq no -np = lines', mapper: 'seq', allocation: seqAlloc, nps: [undefined], want: 'n1 n2 n1 n3' },
  { label: 'seq -np takes the first lines', mapper: 'seq', allocation: seqAlloc, nps: [2], want: 'n1 n2' },
  { label: 'seq MPMD', mapper: 'seq', allocation: seqAlloc, nps: [1, undefined], want: 'n1 | n2 n1 n3' },
  { label: 'seq -H expands counts', mapper: 'seq', allocation: dashH('a:2,b'), nps: [undefined], want: 'a a b' },
  { label: 'seq without a sequence maps by slot', mapper: 'seq', allocation: hosts([{ name: 'a', slots: 2 }, { name: 'b', slots: 1 }]), nps: [undefined], want: 'a a b' },
  { label: 'seq oversubscribed', mapper: 'seq', allocation: hosts([{ name: 'a', slots: 1 }], ['a', 'a']), nps: [undefined], oversubscribe: true, want: 'a a' },
]

describe('placements', () => {
  test.each(placementCases.map((c) => [c.label, c] as const))('%s', (_label, c) => {
    expect(render(c)).toBe(c.want)
  })
})

const errorCases: (Case & { message: string | RegExp })[] = [
  {
    label: 'slot over the slots (the mpirun message)', mapper: 'slot', allocation: dashH('myhost:4'), nps: [5], want: '',
    message: 'there are not enough slots available to run 5 ranks: the allocation (-H) has 4 slots on 1 node (myhost: 4); use --oversubscribe or --map-by slot:OVERSUBSCRIBE, or give more slots with -H host:N or a hostfile',
  },
  {
    label: 'slot MPMD over the slots', mapper: 'slot', allocation: dashH('a:2,b'), nps: [2, 2], want: '',
    message: /^there are not enough slots available to run 4 ranks: the allocation \(-H\) has 3 slots on 2 nodes \(a: 2, b: 1\)/,
  },
  {
    label: 'default allocation names this host', mapper: 'slot', allocation: buildAllocation({ defaultSlots: 2 }), nps: [3], want: '',
    message: /the allocation \(default: this host\) has 2 slots on 1 node/,
  },
  {
    label: 'slot max_slots even when oversubscribing', mapper: 'slot', allocation: capped, nps: [6], oversubscribe: true, want: '',
    message: 'cannot run 6 ranks: the allocation (hostfile h) holds at most 5 even with oversubscription (max_slots a: 3, b: 2); raise max_slots in the hostfile, add nodes or run fewer ranks',
  },
  {
    label: 'no -np and nothing left', mapper: 'slot', allocation: dashH('a:2'), nps: [undefined, undefined], want: '',
    message: 'app 1 (./app1) has no -np and no free slots are left for it (2 in all, 2 taken by the apps before it); give it -np N',
  },
  {
    label: 'node over the slots', mapper: 'node', allocation: dashH('a:2,b:2'), nps: [5], want: '',
    message: /^there are not enough slots available to run 5 ranks: .* has 4 slots on 2 nodes \(a: 2, b: 2\); use --oversubscribe or --map-by node:OVERSUBSCRIBE/,
  },
  { label: 'node max_slots', mapper: 'node', allocation: capped, nps: [6], oversubscribe: true, want: '', message: /^cannot run 6 ranks: .* holds at most 5/ },
  {
    label: 'ppr more than N x nodes', mapper: 'ppr', allocation: dashH('a:2,b:2,c:2'), arg: '2:node', nps: [7], want: '',
    message: 'ppr:2:node places at most 6 ranks on 3 nodes but 7 were asked for; lower -np, raise N or add nodes',
  },
  {
    label: 'ppr over a node\'s slots', mapper: 'ppr', allocation: dashH('a:2,b:2'), arg: '3:node', nps: [undefined], want: '',
    message: /^there are not enough slots available to run 6 ranks \(3 on a, which has 2 slots\): .*--map-by ppr:3:node:OVERSUBSCRIBE/,
  },
  {
    label: 'ppr over max_slots', mapper: 'ppr', allocation: capped, arg: '3:node', nps: [undefined], oversubscribe: true, want: '',
    message: 'cannot run 6 ranks: b would get 3 but its max_slots is 2, a limit even with --oversubscribe; raise max_slots in the hostfile, add nodes or run fewer ranks',
  },
  { label: 'ppr without its argument', mapper: 'ppr', allocation: dashH('a'), nps: [1], want: '', message: /ppr needs a count and a resource; write ppr:N:node/ },
  {
    label: 'seq more ranks than lines', mapper: 'seq', allocation: seqAlloc, nps: [5], want: '',
    message: '--map-by seq puts one rank per hostfile line, but 5 ranks were asked for and hostfile h has 4 lines; lower -np or add lines',
  },
  {
    label: 'seq no -np and nothing left', mapper: 'seq', allocation: seqAlloc, nps: [4, undefined], want: '',
    message: /^app 1 \(\.\/app1\) has no -np and no hostfile lines are left for it/,
  },
  {
    label: 'seq over a node\'s slots', mapper: 'seq', allocation: hosts([{ name: 'a', slots: 1 }], ['a', 'a']), nps: [undefined], want: '',
    message: /not enough slots available to run 2 ranks \(2 on a, which has 1 slot\).*--map-by seq:OVERSUBSCRIBE/,
  },
  {
    label: 'seq over max_slots', mapper: 'seq', allocation: hosts([{ name: 'a', slots: 1, maxSlots: 1 }], ['a', 'a']), nps: [undefined], oversubscribe: true, want: '',
    message: /a would get 2 but its max_slots is 1/,
  },
  { label: 'seq host not in the allocation', mapper: 'seq', allocation: hosts([{ name: 'a', slots: 1 }], ['b']), nps: [undefined], want: '', message: /host b is in the sequence but not in the allocation/ },
  { label: 'empty allocation', mapper: 'node', allocation: hosts([]), nps: [1], want: '', message: /has no nodes; give hosts with -H host:N or a hostfile/ },
]

describe('errors', () => {
  test.each(errorCases.map((c) => [c.label, c] as const))('%s', (_label, c) => {
    const message = errorOf(c)
    if (typeof c.message === 'string') expect(message).toBe(c.message)
    else expect(message).toMatch(c.message)
  })
})

describe('bounds: mapping is proportional to ranks, not slots', () => {
  const huge = () => dashH('a:1048576,b:1048576')
  test.each(['slot', 'node', 'ppr', 'seq'] as const)('%s: 3 ranks on hosts with a million slots each', (name) => {
    const req = { allocation: huge(), apps: apps(3), oversubscribe: false, arg: name === 'ppr' ? '1048576:node' : undefined }
    expect(mappers[name].map(req).map((p) => p.node)).toHaveLength(3)
  })

  test.each(['slot', 'node', 'seq'] as const)('%s: no -np on two million slots is too many ranks', (name) => {
    const message = errorOf({ label: '', mapper: name, allocation: huge(), nps: [undefined], want: '' })
    expect(message).toBe('cannot run 2097152 ranks: a job may have at most 1048576; give -np (without it every one of the 2097152 free slots gets a rank)'.replace('free slots', name === 'seq' ? 'hostfile lines' : 'free slots'))
  })

  test('apps over the rank limit together', () => {
    expect(errorOf({ label: '', mapper: 'slot', allocation: huge(), nps: [1048576, 1], want: '' })).toBe('cannot run 1048577 ranks: a job may have at most 1048576; lower -np')
  })
})

describe('plugin shape and local ranks', () => {
  test.each([
    ['slot', 20],
    ['node', 10],
    ['ppr', 5],
    ['seq', 1],
  ] as const)('%s has priority %d', (name, priority) => {
    expect(mappers[name]).toMatchObject({ kind: 'mapper', name, priority })
    expect(mappers[name].description.length).toBeGreaterThan(0)
  })

  test('no apps, no ranks', () => {
    expect(mappers.slot.map({ allocation: dashH('a'), apps: [], oversubscribe: false })).toEqual([])
  })

  test('assignLocalRanks after a by-node mapping', () => {
    const placements = mappers.node.map({ allocation: dashH('a:2,b:3'), apps: apps(2, 3), oversubscribe: false })
    const procs = assignLocalRanks(placements)
    expect(procs.map((p) => [p.rank, p.app, p.node, p.localRank, p.localSize])).toEqual([
      [0, 0, 'a', 0, 2],
      [1, 0, 'b', 0, 3],
      [2, 1, 'a', 1, 2],
      [3, 1, 'b', 1, 3],
      [4, 1, 'b', 2, 3],
    ])
  })
})
