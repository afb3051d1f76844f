/**
 * The migrate request line by line (#12): the daemon's grammar for `REQUEST <id> MIGRATE <b64>`,
 * how it travels as `orted.app` (wireRequest), the SDK's CKPT / RELEASE option parsing, and the
 * HNP's AppServices answering it: entries checked against the job's size, everything else handed
 * to the port's migrate(); the port's reason answered ERR in one line; an answer meant for a
 * requester whose connection went away (it moved) dropped.
 */
import { describe, expect, test } from 'bun:test'
import { parseCkpt, parseMigrated } from '../../src/app/checkpoint'
import { MAX_MIGRATE_BYTES, encodePreferences, parseOutcome } from '../../src/app/migrate'
import { parseRankLine, wireRequest } from '../../src/orted/snapc/app-protocol'
import { AppServices, type AppServicesPort } from '../../src/hnp/snapc/app-services'
import type { MigratePreference } from '../../src/hnp/snapc/migrate-types'
import type { MessageOf } from '../../src/wire/messages'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const bytes = (s: string) => new TextEncoder().encode(s)

describe('REQUEST MIGRATE on the line', () => {
  test('a good request parses to op migrate with the JSON bytes; it travels as checkpoint + key', () => {
    const json = '[{"rank":1,"onto":"n3"},{"rank":2,"offNode":true}]'
    const msg = parseRankLine(`REQUEST 9 MIGRATE ${b64(json)}`)
    expect(msg.kind).toBe('request')
    if (msg.kind !== 'request') return
    expect(msg.req.op).toBe('migrate')
    expect(new TextDecoder().decode(msg.req.value)).toBe(json)
    expect(wireRequest(msg.req)).toEqual({ op: 'migrate', value: msg.req.value })
    // The other requests travel as before.
    const put = parseRankLine(`PUT 3 k ${b64('v')}`)
    if (put.kind === 'request') expect(wireRequest(put.req)).toEqual({ op: 'put', key: 'k', value: bytes('v'), term: undefined })
  })

  test('the SDK encodes what the daemon parses', () => {
    const prefs = [{ rank: 0, nearRank: 3 }, { rank: 1, onto: 'n2', offNode: false }]
    const msg = parseRankLine(`REQUEST 1 MIGRATE ${encodePreferences(prefs)}`)
    expect(msg.kind === 'request' && JSON.parse(new TextDecoder().decode(msg.req.value))).toEqual(prefs)
  })

  test('bad requests are answered ERR <id> with one reason; the connection stays', () => {
    const cases: [string, string][] = [
      ['REQUEST 4 MIGRATE', 'usage: REQUEST <id> MIGRATE <base64 json>'],
      ['REQUEST 4 MIGRATE a b', 'usage: REQUEST <id> MIGRATE <base64 json>'],
      ['REQUEST 4 MIGRATE !!!!', 'the preferences are not valid base64'],
      [`REQUEST 4 MIGRATE ${b64('{rank')}`, 'the preferences are not JSON'],
      [`REQUEST 4 MIGRATE ${b64('[]')}`, 'nothing to migrate: the preference list is empty'],
      [`REQUEST 4 MIGRATE ${b64('[{"rank":"1"}]')}`, 'entry 0: rank must be a non-negative integer, not "1"'],
      [`REQUEST 4 MIGRATE ${b64('x'.repeat(MAX_MIGRATE_BYTES + 10))}`, `the preferences are more than ${MAX_MIGRATE_BYTES} bytes`],
    ]
    for (const [line, why] of cases) expect([line.slice(0, 40), parseRankLine(line)]).toEqual([line.slice(0, 40), { kind: 'error', id: 4, message: why }])
  })
})

describe('round options in the SDK', () => {
  test('CKPT options and RELEASE migrated=', () => {
    expect(parseCkpt('CKPT 5 - ompx_global_snapshot_1.ckpt')).toEqual({ seq: 5, ref: 'ompx_global_snapshot_1.ckpt', term: false, stop: false, migrating: false, allMigrating: false })
    expect(parseCkpt('CKPT 6 all_migrating,migrating,term a ref with spaces')).toMatchObject({ seq: 6, ref: 'a ref with spaces', term: true, migrating: true, allMigrating: true })
    expect(parseCkpt('CKPT 7 all_migrating,newer ref')).toMatchObject({ migrating: false, allMigrating: true })
    expect(parseMigrated(['migrated=1,3,10'])).toEqual([1, 3, 10])
    expect(parseMigrated(['other=2', 'migrated=x,2'])).toEqual([2])
    expect(parseMigrated([])).toEqual([])
  })

  test('the outcome: JSON fields read, anything else tolerated', () => {
    expect(parseOutcome('{"moves":[{"rank":2,"from":"a","to":"b","oldPid":1,"newPid":2,"bytes":3,"downtimeMs":4}],"bytes":3,"totalMs":9}')).toEqual({
      moves: [{ rank: 2, from: 'a', to: 'b', oldPid: 1, newPid: 2, bytes: 3, downtimeMs: 4 }],
      bytes: 3,
      totalMs: 9,
      text: '{"moves":[{"rank":2,"from":"a","to":"b","oldPid":1,"newPid":2,"bytes":3,"downtimeMs":4}],"bytes":3,"totalMs":9}',
    })
    expect(parseOutcome('moved 1 rank')).toEqual({ moves: [], bytes: 0, totalMs: 0, text: 'moved 1 rank' })
  })
})

type Reply = { rank: number; id: number; ok: boolean; text?: string }

function hnp(size = 4, migrate?: AppServicesPort['migrate']) {
  const replies: Reply[] = []
  const asked: [MigratePreference[], number][] = []
  let settle: { resolve(t: string): void; reject(e: Error): void } | null = null
  const port: AppServicesPort = {
    size,
    reply: (rank, id, ok, _value, text) => void replies.push({ rank, id, ok, text }),
    checkpoint: async () => '0 ref',
    checkpointRunning: () => false,
    fenceDone: () => {},
    migrate:
      migrate ??
      ((prefs, requester) => {
        asked.push([prefs, requester])
        return new Promise((resolve, reject) => (settle = { resolve, reject }))
      }),
  }
  const s = new AppServices(port)
  const send = (rank: number, id: number, json: string) =>
    s.request({ t: 'orted.app', jobid: '1.1', rank, id, op: 'migrate', value: bytes(json) } as MessageOf<'orted.app'>)
  const flush = () => Bun.sleep(0)
  return { s, replies, asked, send, flush, settle: () => settle! }
}

describe('AppServices: op migrate', () => {
  test('entries are checked against the job size, then handed to the port with the requester', async () => {
    const h = hnp(4)
    h.send(2, 7, '[{"rank":4}]')
    expect(h.replies).toEqual([{ rank: 2, id: 7, ok: false, text: 'entry 0: rank must be an integer from 0 to 3, not 4' }])
    h.send(2, 8, '[{"rank":1,"onto":"n2"},{"rank":1,"nearRank":3,"offNode":true}]')
    expect(h.asked).toEqual([[[{ rank: 1, onto: 'n2' }, { rank: 1, nearRank: 3, offNode: true }], 2]])
    h.settle().resolve('{"moves":[]}')
    await h.flush()
    expect(h.replies[1]).toEqual({ rank: 2, id: 8, ok: true, text: '{"moves":[]}' })
  })

  test("the port's reason is answered ERR; a throwing port too", async () => {
    const h = hnp(4)
    h.send(0, 1, '[{"rank":1}]')
    h.settle().reject(new Error('migration in progress'))
    await h.flush()
    expect(h.replies).toEqual([{ rank: 0, id: 1, ok: false, text: 'migration in progress' }])
    const t = hnp(4, () => {
      throw new Error('migration is not wired yet')
    })
    t.send(0, 2, '[{"rank":1}]')
    await t.flush()
    expect(t.replies).toEqual([{ rank: 0, id: 2, ok: false, text: 'migration is not wired yet' }])
  })

  test("op 'migrate' passes the entries and the requester to the port", () => {
    const h = hnp(2)
    h.send(1, 3, '[{"rank":0,"offNode":true}]')
    expect(h.asked).toEqual([[[{ rank: 0, offNode: true }], 1]])
  })

  test('a requester that moved (its connection went away) gets no answer meant for its old process', async () => {
    const h = hnp(4)
    h.s.link(1, true)
    h.send(1, 5, '[{"rank":1,"onto":"n4"}]')
    h.s.link(1, false) // the old process ended
    h.s.link(1, true) // the moved rank connected on its new node
    h.settle().resolve('{"moves":[]}')
    await h.flush()
    expect(h.replies).toEqual([])
  })

  test('oversized or non-JSON values are refused without reaching the port', () => {
    const h = hnp(4)
    h.send(0, 1, 'x'.repeat(MAX_MIGRATE_BYTES + 1))
    h.send(0, 2, 'not json')
    h.send(0, 3, '')
    expect(h.replies.map((r) => r.text)).toEqual([`the preferences are ${MAX_MIGRATE_BYTES + 1} bytes, more than ${MAX_MIGRATE_BYTES}`, 'the preferences are not JSON', 'MIGRATE needs the preference entries'])
    expect(h.asked).toEqual([])
  })
})
