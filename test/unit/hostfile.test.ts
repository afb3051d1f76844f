import { describe, expect, test } from 'bun:test'
import { ActionableError } from '../../src/errors'
import { mergeHostfileLines, parseHostfileLines } from '../../src/runtime/hostfile'

/** A hostfile's merged hosts, as allocation.ts reads them: lines, then merged. */
const parseHostfile = (text: string, path: string, defaultSlots = 1) => mergeHostfileLines(parseHostfileLines(text, path), path, defaultSlots)

const PATH = '/tmp/hosts'

describe('parseHostfile: accepted forms', () => {
  const cases: [string, string, object[]][] = [
    ['slots', 'n1 slots=4', [{ name: 'n1', slots: 4, slotsGiven: true, line: 1 }]],
    ['max_slots', 'n1 slots=2 max_slots=8', [{ name: 'n1', slots: 2, maxSlots: 8, slotsGiven: true }]],
    ['max-slots spelling', 'n1 slots=2 max-slots=3', [{ name: 'n1', slots: 2, maxSlots: 3 }]],
    ['count synonym', 'n1 count=3', [{ name: 'n1', slots: 3 }]],
    ['spaces around =', 'n1 slots = 5', [{ name: 'n1', slots: 5 }]],
    ['upper-case key', 'n1 SLOTS=2', [{ name: 'n1', slots: 2 }]],
    ['name alone defaults', 'n1', [{ name: 'n1', slots: 1, slotsGiven: false }]],
    ['launcher and address', 'sim1 slots=2 launcher=local address=127.0.1.3', [{ name: 'sim1', slots: 2, launcher: 'local', address: '127.0.1.3' }]],
    ['ipv6 address', 'sim1 address=::1', [{ name: 'sim1', address: '::1' }]],
    ['comments and blanks', '# cluster\n\n  n1 slots=2   # two cores\n\t\nn2 slots=1\n', [
      { name: 'n1', slots: 2, line: 3 },
      { name: 'n2', slots: 1, line: 5 },
    ]],
    ['CRLF line ends', 'n1 slots=2\r\nn2 slots=3\r\n', [{ name: 'n1', slots: 2 }, { name: 'n2', slots: 3 }]],
    ['duplicates add up, order kept', 'a slots=2\nb slots=1\na slots=3', [{ name: 'a', slots: 5, line: 1 }, { name: 'b', slots: 1 }]],
    ['duplicate bare lines count one each', 'a\na\na', [{ name: 'a', slots: 3, slotsGiven: true }]],
    ['bare + counted line', 'a\na slots=2', [{ name: 'a', slots: 3, slotsGiven: true }]],
    ['last max_slots wins', 'a slots=1 max_slots=2\na slots=1 max_slots=6', [{ name: 'a', slots: 2, maxSlots: 6 }]],
    ['MPICH host:N', 'n1:4\nn2:2 max_slots=3', [{ name: 'n1', slots: 4, slotsGiven: true }, { name: 'n2', slots: 2, maxSlots: 3 }]],
    ['IPv6 host name is not host:N', 'fe80::1 slots=2', [{ name: 'fe80::1', slots: 2 }]],
    ['empty file', '# nothing here\n', []],
  ]
  test.each(cases)('%s', (_label, text, want) => {
    const got = parseHostfile(text, PATH)
    expect(got).toHaveLength(want.length)
    want.forEach((w, i) => expect(got[i]).toMatchObject(w))
  })

  test('a bare host gets defaultSlots, capped by max_slots', () => {
    expect(parseHostfile('n1', PATH, 8)[0]).toMatchObject({ slots: 8, slotsGiven: false })
    expect(parseHostfile('n1 max_slots=3', PATH, 8)[0]).toMatchObject({ slots: 3, maxSlots: 3, slotsGiven: false })
  })

  test('raw lines keep every host line in order, duplicates included', () => {
    const lines = parseHostfileLines('a slots=2\n# x\nb\na\n', PATH)
    expect(lines.map((l) => [l.name, l.line, l.slots])).toEqual([
      ['a', 1, 2],
      ['b', 3, undefined],
      ['a', 4, undefined],
    ])
  })
})

describe('parseHostfile: errors name path:line and the problem', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown key', 'n1 slots=2\nn2 cpus=4', /^\/tmp\/hosts:2: unknown key "cpus" for host n2; expected slots=N/],
    ['non-numeric slots', 'n1 slots=four', /^\/tmp\/hosts:1: slots=four is not a number/],
    ['negative slots', 'n1 slots=-1', /:1: slots=-1 is not a number/],
    ['fractional slots', 'n1 slots=1.5', /:1: slots=1.5 is not a number/],
    ['slots=0', '\nn1 slots=0', /^\/tmp\/hosts:2: slots=0 must be at least 1/],
    ['max_slots=0', 'n1 max_slots=0', /:1: max_slots=0 must be at least 1/],
    ['max_slots < slots', 'n1 slots=4 max_slots=2', /:1: max_slots=2 is less than slots=4 for host n1/],
    ['merged slots over max_slots', 'n1 slots=2 max_slots=3\nn1 slots=2', /:2: host n1 has 4 slots over all its lines but max_slots=3/],
    ['key without value', 'n1 slots=', /:1: slots for host n1 has no value/],
    ['bare word key', 'n1 fast', /:1: unknown key "fast" for host n1/],
    ['key before name', 'slots=4', /:1: "slots=4" is not a host name/],
    ['key given twice', 'n1 slots=1 count=2', /:1: count is given twice for host n1/],
    ['MPICH count not a number', 'n1:x', /:1: slots=x is not a number/],
    ['MPICH count and slots=', 'n1:2 slots=3', /:1: slots is given twice for host n1/],
    ['bad address', 'n1 address=notanip', /:1: address=notanip for host n1 is not an IP address/],
    ['conflicting address', 'n1 address=127.0.1.2\nn1 address=127.0.1.3', /:2: host n1 has address=127.0.1.3 here but address=127.0.1.2/],
    ['slots beyond the limit', 'n1 slots=99999999999999999999', /^\/tmp\/hosts:1: slots=99999999999999999999 is too many; a host may have at most 1048576 slots$/],
    ['MPICH count beyond the limit', 'n1:2147483648', /:1: slots=2147483648 is too many/],
    ['max_slots beyond the limit', 'n1 max_slots=1048577', /:1: max_slots=1048577 is too many/],
    ['merged lines beyond the limit', 'n1 slots=1048576\nn1 slots=1', /:2: host n1 has 1048577 slots over all its lines; a host may have at most 1048576$/],
  ]
  test.each(cases)('%s', (_label, text, message) => {
    let err: unknown
    try {
      parseHostfile(text, PATH)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ActionableError)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toContain('\n')
  })
})
