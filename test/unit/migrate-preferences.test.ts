/**
 * resolvePreferences: the app's requestMigrate() read with the seed's preference table, row by
 * row (self/peer x its home, none, another node x offNode), nearRank, following a requester that
 * moves, slot accounting, and every refusal (conflicts, circles, bad ranks and nodes).
 */
import { describe, expect, test } from 'bun:test'
import { ActionableError } from '../../src/errors'
import { resolvePreferences } from '../../src/hnp/mapping/migrate-targets'
import type { MigrationView } from '../../src/hnp/snapc/migrate-types'

/** n1: ranks 0,1; n2: ranks 2,3; n3 and n4 spares (n4 has the most slots). */
const V: MigrationView = {
  crs: 'self',
  notCheckpointable: null,
  busy: null,
  procs: ['n1', 'n1', 'n2', 'n2'].map((node, rank) => ({ rank, node })),
  nodes: [
    { name: 'n1', slots: 2 },
    { name: 'n2', slots: 2 },
    { name: 'n3', slots: 2 },
    { name: 'n4', slots: 3 },
  ],
}

function refused(f: () => unknown, re: RegExp): void {
  expect(f).toThrow(ActionableError)
  expect(f).toThrow(re)
}

describe('self (the requesting rank)', () => {
  test('its own node: stays; with offNode: an error', () => {
    expect(resolvePreferences(V, [{ rank: 0, onto: 'n1' }], 0)).toEqual([])
    expect(resolvePreferences(V, [{ rank: 0, nearRank: 1 }], 0)).toEqual([])
    refused(() => resolvePreferences(V, [{ rank: 0, onto: 'n1', offNode: true }], 0), /^rank 0: offNode contradicts staying on n1$/)
  })

  test('no place: off its node to the mapper\'s choice (spares, most free slots), with or without offNode', () => {
    expect(resolvePreferences(V, [{ rank: 0 }], 0)).toEqual([{ rank: 0, to: 'n4' }])
    expect(resolvePreferences(V, [{ rank: 0, offNode: true }], 0)).toEqual([{ rank: 0, to: 'n4' }])
  })

  test('another node: moves there, offNode or not; nearRank: to that rank\'s node', () => {
    expect(resolvePreferences(V, [{ rank: 0, onto: 'n3' }], 0)).toEqual([{ rank: 0, to: 'n3' }])
    expect(resolvePreferences(V, [{ rank: 0, onto: 'n3', offNode: true }], 0)).toEqual([{ rank: 0, to: 'n3' }])
    refused(() => resolvePreferences(V, [{ rank: 0, nearRank: 2 }], 0), /^cannot move rank 0 onto n2: it is full, 0 free slots \(2 slots, 2 ranks\)$/)
    const roomy = { ...V, nodes: V.nodes.map((n) => ({ ...n, slots: 4 })) }
    expect(resolvePreferences(roomy, [{ rank: 0, nearRank: 2 }], 0)).toEqual([{ rank: 0, to: 'n2' }])
  })
})

describe('peer (another rank)', () => {
  test('the requester\'s node, or no place: joins the requester; with offNode at home: an error', () => {
    const roomy = { ...V, nodes: V.nodes.map((n) => ({ ...n, slots: 4 })) }
    expect(resolvePreferences(roomy, [{ rank: 2, onto: 'n1' }], 0)).toEqual([{ rank: 2, to: 'n1' }])
    expect(resolvePreferences(roomy, [{ rank: 2 }], 0)).toEqual([{ rank: 2, to: 'n1' }])
    expect(resolvePreferences(roomy, [{ rank: 2, nearRank: 0 }], 0)).toEqual([{ rank: 2, to: 'n1' }])
    // Already with the requester: no move.
    expect(resolvePreferences(V, [{ rank: 1 }], 0)).toEqual([])
    refused(() => resolvePreferences(roomy, [{ rank: 2, onto: 'n1', offNode: true }], 0), /^rank 2: offNode contradicts joining rank 0 on n1$/)
  })

  test('no place with offNode: the mapper\'s choice, neither its node nor the requester\'s', () => {
    expect(resolvePreferences(V, [{ rank: 2, offNode: true }], 0)).toEqual([{ rank: 2, to: 'n4' }])
    const spareless = { ...V, nodes: V.nodes.slice(0, 3).map((n) => ({ ...n, slots: n.name === 'n1' ? 9 : 2 })), procs: ['n1', 'n1', 'n2', 'n3'].map((node, rank) => ({ rank, node })) }
    // n1 has the most free slots but is the requester's node: n3 it is.
    expect(resolvePreferences(spareless, [{ rank: 2, offNode: true }], 0)).toEqual([{ rank: 2, to: 'n3' }])
  })

  test('another node: moves there (no move if it is already there)', () => {
    expect(resolvePreferences(V, [{ rank: 2, onto: 'n3' }], 0)).toEqual([{ rank: 2, to: 'n3' }])
    expect(resolvePreferences(V, [{ rank: 2, onto: 'n3', offNode: true }], 0)).toEqual([{ rank: 2, to: 'n3' }])
    expect(resolvePreferences(V, [{ rank: 2, onto: 'n2' }], 0)).toEqual([])
    refused(() => resolvePreferences(V, [{ rank: 2, onto: 'n2', offNode: true }], 0), /offNode contradicts staying on n2/)
  })

  test('a peer follows a requester that moves, whatever the order of the entries', () => {
    const both = [{ rank: 1 }, { rank: 0, onto: 'n3' }]
    expect(resolvePreferences(V, both, 0)).toEqual([{ rank: 0, to: 'n3' }, { rank: 1, to: 'n3' }])
    expect(resolvePreferences(V, [{ rank: 3, nearRank: 2 }, { rank: 2, onto: 'n4' }], 2)).toEqual([{ rank: 2, to: 'n4' }, { rank: 3, to: 'n4' }])
  })

  test('slots are counted across entries', () => {
    const moves = [{ rank: 0, onto: 'n3' }, { rank: 1, onto: 'n3' }, { rank: 2, onto: 'n3' }]
    refused(() => resolvePreferences(V, moves, 0), /^cannot move rank 2 onto n3: it is full, 0 free slots \(2 slots, 2 ranks\)$/)
  })
})

describe('refusals', () => {
  test('conflicting entries for one rank; identical repeats are fine', () => {
    refused(() => resolvePreferences(V, [{ rank: 2, onto: 'n3' }, { rank: 2, onto: 'n4' }], 0), /^conflicting migration preferences for rank 2$/)
    refused(() => resolvePreferences(V, [{ rank: 2 }, { rank: 2, offNode: true }], 0), /conflicting/)
    expect(resolvePreferences(V, [{ rank: 2, onto: 'n3' }, { rank: 2, onto: 'n3' }], 0)).toEqual([{ rank: 2, to: 'n3' }])
  })

  test('onto with nearRank, a rank near itself, a circle', () => {
    refused(() => resolvePreferences(V, [{ rank: 2, onto: 'n3', nearRank: 0 }], 0), /^rank 2: give onto or nearRank, not both$/)
    refused(() => resolvePreferences(V, [{ rank: 2, nearRank: 2 }], 0), /^rank 2 cannot move near itself$/)
    refused(() => resolvePreferences(V, [{ rank: 2, nearRank: 3 }, { rank: 3, nearRank: 2 }], 0), /^the migration preferences of ranks 2, 3 depend on each other$/)
  })

  test('ranks out of range, unknown nodes', () => {
    refused(() => resolvePreferences(V, [{ rank: 4 }], 0), /^rank 4 is out of range: the job has ranks 0-3$/)
    refused(() => resolvePreferences(V, [{ rank: 1, nearRank: 7 }], 0), /^nearRank 7 is out of range/)
    refused(() => resolvePreferences(V, [{ rank: 1 }], 9), /^requesting rank 9 is out of range/)
    refused(() => resolvePreferences(V, [{ rank: 1, onto: 'n9' }], 0), /^n9 is not a node of the job's allocation \(n1, n2, n3, n4\)$/)
  })
})
