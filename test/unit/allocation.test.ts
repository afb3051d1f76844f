/** buildAllocation (-H, hostfile, both, default), isOnThisMachine, and --map-by parsing. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { buildAllocation, parseDashHost } from '../../src/runtime/allocation'
import { isOnThisMachine } from '../../src/runtime/hosts'
import { parseMapBy, parsePpr } from '../../src/runtime/map-by'

/** "a:2 b" -> [{ name: 'a', count: 2 }, { name: 'b', count: 1 }] */
const runs = (spec: string) => spec.split(' ').map((w) => ({ name: w.split(':')[0]!, count: Number(w.split(':')[1] ?? 1) }))

function errorOf(fn: () => unknown): Error {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ActionableError)
    expect((e as Error).message).not.toContain('\n')
    return e as Error
  }
  throw new Error('expected an ActionableError')
}

let dir = ''
let hostfile = ''
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ompx-alloc-'))
  hostfile = join(dir, 'hosts')
  writeFileSync(hostfile, '# test cluster\nn1 slots=2\nn2 slots=4 max_slots=6\nn1 slots=1\nn3\n')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parseDashHost', () => {
  test.each([
    [['h1:2,h2'], [{ name: 'h1', slots: 2, given: true }, { name: 'h2', slots: 1, given: false }]],
    [['a', 'b:3'], [{ name: 'a', slots: 1, given: false }, { name: 'b', slots: 3, given: true }]],
    [['[::1]:2,::1'], [{ name: '::1', slots: 2, given: true }, { name: '::1', slots: 1, given: false }]],
  ])('%j', (values, want) => expect(parseDashHost(values)).toEqual(want))

  test.each([
    ['h1:x', /"h1:x" has a bad slot count "x"/],
    ['h1:0', /"h1:0" has a bad slot count "0"/],
    ['h1:', /bad slot count ""/],
    ['h1,,h2', /empty host name/],
    [':2', /has no host name/],
  ])('%s is an error', (value, message) => expect(errorOf(() => parseDashHost([value])).message).toMatch(message))
})

describe('buildAllocation', () => {
  test('-H h1:2,h2: counts, bare host gets 1 slot, the sequence keeps counts as run lengths', () => {
    expect(buildAllocation({ hosts: ['h1:2,h2'], defaultSlots: 8 })).toEqual({
      nodes: [
        { name: 'h1', slots: 2, slotsGiven: true },
        { name: 'h2', slots: 1, slotsGiven: false },
      ],
      source: '-H',
      sequence: [{ name: 'h1', count: 2 }, { name: 'h2', count: 1 }],
    })
  })

  test('-H repeated hosts add up, across values too', () => {
    const a = buildAllocation({ hosts: ['a:2,b', 'a,b:2'], defaultSlots: 8 })
    expect(a.nodes).toEqual([
      { name: 'a', slots: 3, slotsGiven: true },
      { name: 'b', slots: 3, slotsGiven: true },
    ])
    expect(a.sequence).toEqual(runs('a:2 b a b:2'))
  })

  test('hostfile: merged nodes, bare host gets defaultSlots, one sequence entry per line', () => {
    const a = buildAllocation({ hostfile, defaultSlots: 8 })
    expect(a.source).toBe(`hostfile ${hostfile}`)
    expect(a.nodes).toEqual([
      { name: 'n1', slots: 3, slotsGiven: true },
      { name: 'n2', slots: 4, maxSlots: 6, slotsGiven: true },
      { name: 'n3', slots: 8, slotsGiven: false },
    ])
    expect(a.sequence).toEqual(runs('n1 n2 n1 n3'))
  })

  test('hostfile + -H: -H picks hosts in its order; a count overrides, a bare name keeps the file', () => {
    const a = buildAllocation({ hostfile, hosts: ['n2:5,n1'], defaultSlots: 8 })
    expect(a.source).toBe(`hostfile ${hostfile} restricted by -H`)
    expect(a.nodes).toEqual([
      { name: 'n2', slots: 5, maxSlots: 6, slotsGiven: true },
      { name: 'n1', slots: 3, slotsGiven: true },
    ])
    expect(a.sequence).toEqual(runs('n1 n2 n1'))
  })

  test('hostfile + -H: errors', () => {
    expect(errorOf(() => buildAllocation({ hostfile, hosts: ['n9'], defaultSlots: 1 })).message).toBe(
      `-H names host n9, which is not in hostfile ${hostfile}; add it to the hostfile or drop it from -H`,
    )
    expect(errorOf(() => buildAllocation({ hostfile, hosts: ['n2:7'], defaultSlots: 1 })).message).toMatch(
      /-H gives host n2 7 slots but hostfile .* caps it at max_slots=6/,
    )
  })

  test('neither: this host with defaultSlots, slots not given, no sequence', () => {
    expect(buildAllocation({ defaultSlots: 6 })).toEqual({
      nodes: [{ name: hostname(), slots: 6, slotsGiven: false }],
      source: 'default (this host)',
    })
    expect(buildAllocation({ hosts: [], defaultSlots: 2 }).nodes).toHaveLength(1)
  })

  test('unreadable or empty hostfile', () => {
    const missing = join(dir, 'nope')
    expect(errorOf(() => buildAllocation({ hostfile: missing, defaultSlots: 1 })).message).toMatch(
      new RegExp(`^cannot read hostfile ${missing}: .*; check the --hostfile path$`),
    )
    const empty = join(dir, 'empty')
    writeFileSync(empty, '# only a comment\n')
    expect(errorOf(() => buildAllocation({ hostfile: empty, defaultSlots: 1 })).message).toMatch(/lists no hosts/)
  })

  test('hostfile syntax errors surface with path:line', () => {
    const bad = join(dir, 'bad')
    writeFileSync(bad, 'n1 slots=2\nn2 slots=zero\n')
    expect(errorOf(() => buildAllocation({ hostfile: bad, defaultSlots: 1 })).message).toStartWith(`${bad}:2: slots=zero`)
  })
})

describe('isOnThisMachine', () => {
  test.each([
    ['localhost', true],
    ['LOCALHOST', true],
    [hostname(), true],
    [hostname().split('.')[0]!, true],
    ['127.0.0.1', true],
    ['127.0.1.3', true],
    ['::1', true],
    ['10.0.0.1', false],
    ['127.0.0', false],
    ['node-elsewhere.example', false],
  ])('%s -> %p', (name, want) => expect(isOnThisMachine(name)).toBe(want))
})

describe('parseMapBy', () => {
  test.each([
    [undefined, {}],
    ['', {}],
    ['slot', { mapper: 'slot' }],
    ['SLOT', { mapper: 'slot' }],
    ['node', { mapper: 'node' }],
    ['byslot', { mapper: 'slot' }],
    ['bynode', { mapper: 'node' }],
    ['seq', { mapper: 'seq' }],
    ['ppr:2:node', { mapper: 'ppr', arg: '2:node' }],
    ['ppr:2:NODE:oversubscribe', { mapper: 'ppr', arg: '2:node', oversubscribe: true }],
    ['ppr:2:node,OVERSUBSCRIBE', { mapper: 'ppr', arg: '2:node', oversubscribe: true }],
    ['slot:OVERSUBSCRIBE', { mapper: 'slot', oversubscribe: true }],
    ['node:NoOversubscribe', { mapper: 'node', nooversubscribe: true }],
    ['seq:', { mapper: 'seq' }],
    [':OVERSUBSCRIBE', { oversubscribe: true }],
    ['least-loaded', { mapper: 'least-loaded' }],
    ['MyMapper:fast:OVERSUBSCRIBE', { mapper: 'MyMapper', arg: 'fast', oversubscribe: true }],
  ])('%p', (value, want) => expect(parseMapBy(value)).toEqual(want))

  test.each([
    ['slot:PE=2', /--map-by slot:PE=2: unknown modifier "PE=2"; ompx supports :OVERSUBSCRIBE and :NOOVERSUBSCRIBE/],
    ['node:SPAN', /unknown modifier "SPAN"/],
    [':bogus', /unknown modifier "bogus"/],
    ['slot:OVERSUBSCRIBE:NOOVERSUBSCRIBE', /contradict each other/],
    ['ppr', /ppr needs a count and a resource; write ppr:N:node/],
    ['ppr:', /ppr needs a count and a resource/],
    ['ppr:2', /ppr needs a count and a resource/],
    ['ppr:x:node', /"x" is not a count of ranks; write ppr:N:node/],
    ['ppr:0:node', /"0" is not a count of ranks/],
    ['ppr:2:socket', /ppr resource "socket" is not supported, only node; write ppr:N:node/],
  ])('%s is an error', (value, message) => expect(errorOf(() => parseMapBy(value)).message).toMatch(message))

  test('parsePpr', () => {
    expect(parsePpr('3:node')).toEqual({ perNode: 3, resource: 'node' })
    expect(errorOf(() => parsePpr(undefined)).message).toMatch(/^--map-by ppr: ppr needs a count/)
  })
})

describe('bounds: slot counts are capped and nothing is allocated per slot', () => {
  test.each([
    [['n1:2147483648'], /^-H n1:2147483648: "n1:2147483648" has 2147483648 slots; a host may have at most 1048576$/],
    [['n1:99999999999999999999'], /has 99999999999999999999 slots; a host may have at most 1048576/],
    [['n1:1048576,n1:1'], /^-H gives host n1 1048577 slots over all its items; a host may have at most 1048576$/],
  ])('-H %j is a user error', (hosts, message) => {
    const err = errorOf(() => buildAllocation({ hosts, defaultSlots: 1 }))
    expect(err).toBeInstanceOf(ActionableError)
    expect(err.message).toMatch(message)
  })

  test('-H host:N at the limit keeps one sequence entry, not N', () => {
    const a = buildAllocation({ hosts: ['n1:1048576,n2:1048576'], defaultSlots: 1 })
    expect(a.sequence).toEqual(runs('n1:1048576 n2:1048576'))
  })

  test('ppr:N beyond the limit', () => {
    expect(errorOf(() => parsePpr('99999999999:node')).message).toMatch(/99999999999 ranks per node is too many; N may be at most 1048576/)
  })
})
