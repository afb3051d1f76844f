/**
 * The dpm's pure parts: PMI-1 spawn requests as MPICH writes them (src/orted/pmi/spawn-block.ts)
 * and the HNP's name service (src/hnp/dpm/name-service.ts); the e2e tests drive both through
 * real PMI connections (test/e2e/pmi-spawn.test.ts, test/e2e/pmi-names.test.ts).
 */
import { describe, expect, test } from 'bun:test'
import { NameService } from '../../src/hnp/dpm/name-service'
import { SpawnBlock, type SpawnParse } from '../../src/orted/pmi/spawn-block'

function feed(lines: string[]): (SpawnParse | null)[] {
  const block = new SpawnBlock()
  return lines.map((l) => block.line(l))
}

const app = (np: number, exec: string, extra: string[], total = 1, sofar = 1) => [
  'mcmd=spawn', `nprocs=${np}`, `execname=${exec}`, `totspawns=${total}`, `spawnssofar=${sofar}`, ...extra, 'endcmd',
]

describe('spawn requests', () => {
  test('one app: arguments with spaces and =, preput and info pairs; complete only at endcmd', () => {
    const out = feed(app(2, './child', ['arg1=a b', 'arg2=x=y', 'argcnt=2', 'preput_num=1', 'preput_key_0=PARENT_ROOT_PORT_NAME', 'preput_val_0=tag#0$', 'info_num=1', 'info_key_0=wdir', 'info_val_0=/tmp']))
    expect(out.slice(0, -1).every((r) => r === null)).toBe(true)
    expect(out.at(-1)).toEqual({ ok: true, apps: [{ np: 2, argv: ['./child', 'a b', 'x=y'], info: [['wdir', '/tmp']] }], preput: [['PARENT_ROOT_PORT_NAME', 'tag#0$']] })
  })

  test('spawn_multiple: answered only after the last of totspawns blocks', () => {
    const out = feed([...app(1, 'a', ['argcnt=0', 'preput_num=0', 'info_num=0'], 2, 1), ...app(3, 'b', ['argcnt=0', 'preput_num=0', 'info_num=0'], 2, 2)])
    expect(out.slice(0, -1).every((r) => r === null)).toBe(true)
    expect(out.at(-1)).toEqual({ ok: true, apps: [{ np: 1, argv: ['a'], info: [] }, { np: 3, argv: ['b'], info: [] }], preput: [] })
  })

  test('broken requests are refused with the reason, once the block has ended', () => {
    expect(feed(app(0, 'a', [])).at(-1)).toEqual({ ok: false, why: 'spawn needs nprocs=N (N >= 1)' })
    expect(feed(app(1, 'a', ['argcnt=1'])).at(-1)).toEqual({ ok: false, why: 'spawn: arg1 is missing' })
    expect(feed(app(1, 'a', ['info_num=1', 'info_key_0=host'])).at(-1)).toEqual({ ok: false, why: 'spawn: info_key_0 or info_val_0 is missing' })
    expect(feed(['mcmd=spawn', 'nprocs=1', 'endcmd']).at(-1)).toEqual({ ok: false, why: 'spawn needs execname=' })
    const junk = feed(['mcmd=spawn', 'no equals sign', 'endcmd'])
    expect(junk).toEqual([null, null, { ok: false, why: '"no equals sign" in a spawn request is not key=value' }])
    expect(feed(app(5000, 'a', [])).at(-1)).toEqual({ ok: false, why: 'spawn of more than 4096 processes' })
  })
})

describe('name service', () => {
  test('publish, duplicate, lookup, unpublish by the owner only, names gone with their job', () => {
    const ns = new NameService()
    expect(ns.publish('1.1', 'svc', 'p1')).toEqual({ ok: true })
    expect(ns.publish('1.1', 'svc', 'p2')).toEqual({ ok: false, why: 'key_already_present' })
    expect(ns.publish('1.2', 'svc', 'p2')).toEqual({ ok: false, why: 'key_already_present (published by job 1.1)' })
    expect(ns.lookup('svc')).toEqual({ ok: true, port: 'p1' })
    expect(ns.lookup('nope')).toEqual({ ok: false, why: 'service_not_found' })
    expect(ns.unpublish('1.2', 'svc')).toEqual({ ok: false, why: 'service_published_by_job_1.1' })
    ns.publish('1.2', 'other', 'p3')
    ns.jobEnded('1.1')
    expect(ns.lookup('svc')).toEqual({ ok: false, why: 'service_not_found' })
    expect(ns.lookup('other')).toEqual({ ok: true, port: 'p3' })
    expect(ns.unpublish('1.2', 'other')).toEqual({ ok: true })
    expect(ns.unpublish('1.2', 'other')).toEqual({ ok: false, why: 'service_not_found' })
  })

  test('empty or oversize service names and ports are refused (PMI vallen_max, 1024)', () => {
    const ns = new NameService()
    expect(ns.publish('1.1', '', 'p')).toEqual({ ok: false, why: 'a service name must be 1 to 1024 characters' })
    expect(ns.publish('1.1', 'x'.repeat(1025), 'p').ok).toBe(false)
    expect(ns.publish('1.1', 's', '')).toEqual({ ok: false, why: 'a port must be 1 to 1024 characters' })
    expect(ns.publish('1.1', 's', 'p'.repeat(1024))).toEqual({ ok: true })
  })

  test('at most 4096 names per HNP', () => {
    const ns = new NameService()
    for (let i = 0; i < 4096; i++) expect(ns.publish('1.1', `s${i}`, 'p').ok).toBe(true)
    expect(ns.publish('1.2', 'one-more', 'p')).toEqual({ ok: false, why: 'the HNP holds 4096 names already' })
    ns.jobEnded('1.1')
    expect(ns.publish('1.2', 'one-more', 'p')).toEqual({ ok: true })
  })
})
