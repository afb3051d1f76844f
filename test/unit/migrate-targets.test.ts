/**
 * planMigration (`ompx migrate -r/-x/-t`) and the syntax of its lists: explicit targets in order
 * and round robin, the mapper's choice (spares first, most free slots, never the source), slot
 * accounting across planned moves, and every one-line refusal.
 */
import { describe, expect, test } from 'bun:test'
import { parseNodeList, parseRankList } from '../../src/args/migrate-options'
import { ActionableError } from '../../src/errors'
import { planMigration } from '../../src/hnp/mapping/migrate-targets'
import type { MigrationView } from '../../src/hnp/snapc/migrate-types'

/** `-H n1:2,n2:2,n3:2 -np 4` by slot: ranks 0,1 on n1, 2,3 on n2, n3 a spare. */
function view(nodes: [string, number][] = [['n1', 2], ['n2', 2], ['n3', 2]], placement = ['n1', 'n1', 'n2', 'n2']): MigrationView {
  return {
    crs: 'self',
    notCheckpointable: null,
    busy: null,
    procs: placement.map((node, rank) => ({ rank, node })),
    nodes: nodes.map(([name, slots]) => ({ name, slots })),
  }
}

function refused(f: () => unknown, re: RegExp): void {
  let err: unknown
  try {
    f()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(ActionableError)
  const msg = (err as Error).message
  expect(msg).toMatch(re)
  expect(msg).not.toContain('\n')
}

describe('planMigration: targets', () => {
  test('-r without -t: the spare first, then the most free slots, never the source', () => {
    expect(planMigration(view(), { ranks: [2] })).toEqual([{ rank: 2, to: 'n3' }])
    expect(planMigration(view(), { ranks: [0, 2] })).toEqual([{ rank: 0, to: 'n3' }, { rank: 2, to: 'n3' }])
    // n3 is full after two; n1 has been emptied by ranks 0 and 1.
    expect(planMigration(view(), { ranks: [0, 1, 2] })).toEqual([{ rank: 0, to: 'n3' }, { rank: 1, to: 'n3' }, { rank: 2, to: 'n1' }])
  })

  test('a spare is preferred to a node with more free slots; without spares the most free slots win', () => {
    const v = view([['n1', 2], ['n2', 8], ['n3', 1]])
    expect(planMigration(v, { ranks: [0] })).toEqual([{ rank: 0, to: 'n3' }])
    // n3 is full after rank 0: rank 1 goes to n2 (6 free), not back to n1.
    expect(planMigration(v, { ranks: [0, 1] })).toEqual([{ rank: 0, to: 'n3' }, { rank: 1, to: 'n2' }])
    const busy = view([['n1', 4], ['n2', 3], ['n3', 4]], ['n1', 'n2', 'n3', 'n3'])
    expect(planMigration(busy, { ranks: [2] })).toEqual([{ rank: 2, to: 'n1' }])
  })

  test('slot accounting: a move takes a slot on its target and frees one on its source; ties go to allocation order', () => {
    const v = view([['n1', 1], ['n2', 1], ['n3', 1]], ['n1', 'n2'])
    expect(planMigration(v, { ranks: [0, 1] })).toEqual([{ rank: 0, to: 'n3' }, { rank: 1, to: 'n1' }])
    const tie = view([['n1', 2], ['n2', 2], ['n3', 2], ['n4', 2]])
    expect(planMigration(tie, { ranks: [0] })).toEqual([{ rank: 0, to: 'n3' }])
    refused(() => planMigration(view([['n1', 1], ['n2', 1]], ['n1', 'n2']), { ranks: [0] }), /^no free slot for rank 0 on another node .*n1: 0 free, n2: 0 free/)
  })

  test('-t: rank i of the list goes to target i, then round robin', () => {
    const v = view([['n1', 2], ['n2', 2], ['n3', 4], ['n4', 4]])
    expect(planMigration(v, { ranks: [0, 1, 2], onto: ['n4', 'n3'] })).toEqual([
      { rank: 0, to: 'n4' },
      { rank: 1, to: 'n3' },
      { rank: 2, to: 'n4' },
    ])
    // Explicit targets need not be spares.
    expect(planMigration(view([['n1', 2], ['n2', 3], ['n3', 2]]), { ranks: [0], onto: ['n2'] })).toEqual([{ rank: 0, to: 'n2' }])
  })

  test('-x: every rank off the nodes, never onto another -x node; -r and -x together', () => {
    expect(planMigration(view(), { off: ['n2'] })).toEqual([{ rank: 2, to: 'n3' }, { rank: 3, to: 'n3' }])
    const v = view([['n1', 2], ['n2', 3], ['n3', 2], ['n4', 1]])
    expect(planMigration(v, { off: ['n1', 'n3'] })).toEqual([{ rank: 0, to: 'n4' }, { rank: 1, to: 'n2' }])
    expect(planMigration(view(), { ranks: [3], off: ['n1'] })).toEqual([{ rank: 3, to: 'n3' }, { rank: 0, to: 'n3' }, { rank: 1, to: 'n2' }])
    expect(planMigration(view(), { ranks: [1], off: ['n1'], onto: ['n3'] })).toEqual([{ rank: 1, to: 'n3' }, { rank: 0, to: 'n3' }])
  })
})

describe('planMigration: refusals, each one line', () => {
  test('nothing to do', () => {
    refused(() => planMigration(view(), {}), /^nothing to do: name the ranks to move \(-r\) or the nodes to leave \(-x\)$/)
    refused(() => planMigration(view(), { onto: ['n3'] }), /^nothing to do/)
    refused(() => planMigration(view(), { off: ['n3'] }), /^nothing to do: no rank runs on n3$/)
  })

  test('rank out of range, unknown node, --onto outside the allocation', () => {
    refused(() => planMigration(view(), { ranks: [4] }), /^rank 4 is out of range: the job has ranks 0-3$/)
    refused(() => planMigration(view(), { ranks: [1, 99] }), /rank 99 is out of range/)
    refused(() => planMigration(view(), { off: ['n9'] }), /^unknown node n9 in --off: the job's nodes are n1, n2, n3$/)
    refused(() => planMigration(view(), { ranks: [0], onto: ['n9'] }), /^--onto n9 is not a node of the job's allocation \(n1, n2, n3\)$/)
  })

  test('--onto a full node says how many free slots it has, also once round robin fills it', () => {
    refused(() => planMigration(view(), { ranks: [0], onto: ['n2'] }), /^cannot move rank 0 onto n2 \(--onto\): it is full, 0 free slots \(2 slots, 2 ranks\)$/)
    refused(() => planMigration(view(), { ranks: [0, 1, 2], onto: ['n3'] }), /rank 2 onto n3 .*0 free slots \(2 slots, 2 ranks\)/)
  })

  test('target equal to the source, a node in both -x and -t', () => {
    refused(() => planMigration(view(), { ranks: [0], onto: ['n1'] }), /^rank 0 already runs on n1 \(--onto n1\)$/)
    refused(() => planMigration(view(), { ranks: [0, 2], onto: ['n3', 'n2'] }), /^rank 2 already runs on n2/)
    refused(() => planMigration(view(), { off: ['n1'], onto: ['n1'] }), /^n1 is in both --off and --onto$/)
  })

  test('duplicates in any list', () => {
    refused(() => planMigration(view(), { ranks: [2, 2] }), /^rank 2 is listed twice in --ranks$/)
    refused(() => planMigration(view(), { off: ['n1', 'n1'] }), /^n1 is listed twice in --off$/)
    refused(() => planMigration(view(), { ranks: [0], onto: ['n3', 'n3'] }), /^n3 is listed twice in --onto$/)
  })
})

describe('ranks and node lists (syntax)', () => {
  test('single ranks, ranges, both, order and repetition kept', () => {
    expect(parseRankList('2,5')).toEqual([2, 5])
    expect(parseRankList('4-7')).toEqual([4, 5, 6, 7])
    expect(parseRankList('0, 3-4,9')).toEqual([0, 3, 4, 9])
    expect(parseRankList('3,2-3')).toEqual([3, 2, 3])
    expect(parseRankList('5-5')).toEqual([5])
  })

  test('bad lists are refused in one line', () => {
    refused(() => parseRankList('a'), /^--ranks: "a" is not a rank or a range of ranks/)
    refused(() => parseRankList('1,,2'), /"" is not a rank/)
    refused(() => parseRankList('-1'), /"-1" is not a rank/)
    refused(() => parseRankList('7-4'), /^--ranks: range "7-4" runs backwards$/)
    refused(() => parseRankList('1.5'), /not a rank/)
    refused(() => parseRankList('0-99999999'), /beyond any job/)
  })

  test('node lists', () => {
    expect(parseNodeList('n2', '--off')).toEqual(['n2'])
    expect(parseNodeList('n2, n3', '--onto')).toEqual(['n2', 'n3'])
    refused(() => parseNodeList('n2,', '--onto'), /^--onto: "n2," has an empty node name/)
  })
})
