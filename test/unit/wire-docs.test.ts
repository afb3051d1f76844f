/**
 * docs/wire.md's message table is how people outside the code learn the protocol: it must name
 * every message type of the catalog (and no type the catalog lost), so a new message cannot land
 * undocumented.
 */
import { expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CATALOG, WIRE_PROTOCOL_VERSION } from '../../src/wire/messages'

const doc = readFileSync(join(import.meta.dir, '../../docs/wire.md'), 'utf8')
const section = doc.slice(doc.indexOf('## Message catalog'), doc.indexOf('## Priority'))

/** The message names in the first column of the table (`a` → `b` and `a` / `b` rows name two). */
function documentedTypes(): Set<string> {
  const out = new Set<string>()
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `') || line.startsWith('| `t` |')) continue // rows, not the header
    const first = line.split(' | ')[0]!
    for (const m of first.matchAll(/`([a-z][a-z.-]*)`/g)) out.add(m[1]!)
  }
  return out
}

test('every catalog message is in the docs table, and the table names no other', () => {
  const documented = documentedTypes()
  const catalog = Object.keys(CATALOG)
  expect(catalog.filter((t) => !documented.has(t))).toEqual([])
  expect([...documented].filter((t) => !catalog.includes(t))).toEqual([])
})

test('the docs give the protocol version the code speaks', () => {
  expect(section).toContain(`\`WIRE_PROTOCOL_VERSION\` is **${WIRE_PROTOCOL_VERSION}**`)
})
