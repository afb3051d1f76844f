/**
 * The PMI grammar and PMI_process_mapping, message by message, and node fences joined by the
 * HNP's app services (one message per node per fence). The e2e tests in
 * test/e2e/pmi-mpich.test.ts run them against MPICH's and Slurm's clients; the name service and
 * spawn requests are test/unit/dpm.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { processMapping } from '../../src/runtime/process-mapping'
import { PmiFramer, parsePmi1, parsePmi2, pmi1, pmi2 } from '../../src/orted/pmi/pmi-wire'
import { NodeFence } from '../../src/orted/pmi/node-fence'
import { AppServices } from '../../src/hnp/snapc/app-services'
import type { NodeToSnapc } from '../../src/wire/messages'

describe('PMI_process_mapping', () => {
  test('blocks by node (2 nodes x 2) and one node', () => {
    expect(processMapping(['a', 'a', 'b', 'b'])).toBe('(vector,(0,2,2))')
    expect(processMapping(['a', 'a', 'a'])).toBe('(vector,(0,1,3))')
  })
  test('round robin over 2 nodes repeats the block; uneven counts make new blocks', () => {
    expect(processMapping(['a', 'b', 'a', 'b', 'a'])).toBe('(vector,(0,2,1),(0,2,1),(0,1,1))')
    expect(processMapping(['a', 'a', 'b'])).toBe('(vector,(0,1,2),(1,1,1))')
  })
})

describe('PMI-1 lines', () => {
  test('cmd and fields; mcmd names a multi-line command', () => {
    const p = parsePmi1('cmd=put kvsname=kvs_1 key=k value=v')
    expect(p.ok && p.cmd).toBe('put')
    expect(p.ok && Object.fromEntries(p.fields)).toEqual({ cmd: 'put', kvsname: 'kvs_1', key: 'k', value: 'v' })
    const s = parsePmi1('mcmd=spawn')
    expect(s.ok && s.cmd).toBe('spawn')
  })
  test('not key=value, no cmd, a repeated key: why, never a throw', () => {
    expect(parsePmi1('hello')).toEqual({ ok: false, why: '"hello" is not key=value' })
    expect(parsePmi1('key=v')).toEqual({ ok: false, why: 'no cmd=' })
    expect(parsePmi1('cmd=a cmd=b')).toEqual({ ok: false, why: 'cmd appears twice' })
  })
  test('values go intact (=, ; and the rest), as MPICH reads a value up to a space or newline', () => {
    expect(pmi1('get_result', { rc: 0, msg: 'success', value: 'tag#0$description#a=b;c$' })).toBe('cmd=get_result rc=0 msg=success value=tag#0$description#a=b;c$\n')
    expect(pmi1('lookup_result', { rc: 0, msg: 'success', port: 'k=v;;x' })).toBe('cmd=lookup_result rc=0 msg=success port=k=v;;x\n')
    // Our own texts are one word, as Hydra's (key_x_not_found); = and ; stay.
    expect(pmi1('get_result', { rc: -1, msg: 'key x\tnot  found: a=b;' })).toBe('cmd=get_result rc=-1 msg=key_x_not_found:_a=b;\n')
  })
  test('a value with a space or a newline cannot be carried: the answer is rc=-1 saying so', () => {
    const refused = 'cmd=get_result rc=-1 msg=the_value_holds_a_space_or_a_newline,_which_a_PMI-1_line_cannot_carry\n'
    expect(pmi1('get_result', { rc: 0, msg: 'success', value: 'a b' })).toBe(refused)
    expect(pmi1('get_result', { rc: 0, msg: 'success', value: 'a\nb' })).toBe(refused)
    // A line MPICH's parser takes: every value ends at the next space.
    for (const line of [refused, pmi1('get_result', { rc: 0, value: 'x=y;z' })]) {
      const p = parsePmi1(line.trimEnd())
      expect(p.ok).toBe(true)
    }
  })
})

describe('PMI-2 messages', () => {
  test('round trip with ;; inside a value', () => {
    const wire = pmi2('kvs-put', { key: 'k', value: 'a;b' })
    expect(wire).toBe('29    cmd=kvs-put;key=k;value=a;;b;')
    const p = parsePmi2(wire.slice(6))
    expect(p.ok && Object.fromEntries(p.fields)).toEqual({ cmd: 'kvs-put', key: 'k', value: 'a;b' })
  })
  test('the framer switches from lines to length-prefixed messages', () => {
    const got: string[] = []
    const f = new PmiFramer((m) => {
      got.push(m)
      if (m.startsWith('cmd=init')) f.version = 2
    })
    expect(f.push(new TextEncoder().encode('cmd=init pmi_version=2\n18    cmd=fullinit;rc=0;'))).toBeNull()
    expect(got).toEqual(['cmd=init pmi_version=2', 'cmd=fullinit;rc=0;'])
    expect(f.push(new TextEncoder().encode('zz    '))).toBe('a PMI-2 message without a valid 6-character length')
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
