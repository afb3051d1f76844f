/**
 * The dpm's pure parts: PMI-1 spawn requests as MPICH writes them (src/orted/pmi/spawn-block.ts)
 * and the HNP's name service (src/hnp/dpm/name-service.ts).
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
})
