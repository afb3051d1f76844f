/**
 * The HNP's name service and the parsing of PMI-1 spawn blocks, case by case (the e2e tests in
 * test/e2e/pmi-mpich.test.ts drive both through real PMI connections).
 */
import { describe, expect, test } from 'bun:test'
import { NameService } from '../../src/hnp/snapc/name-service'
import { spawnBlock } from '../../src/orted/pmi/spawn-block'

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
