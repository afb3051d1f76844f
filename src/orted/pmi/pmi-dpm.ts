/**
 * The PMI commands the HNP's dpm answers (src/hnp/dpm, docs/pmi.md "Spawn and the name
 * service"): PMI-1's publish_name / unpublish_name / lookup_name and the `mcmd=spawn` request
 * (parsed by spawn-block.ts), PMI-2's name-publish / name-unpublish / name-lookup. Each goes up
 * as one message (dpm-client.ts) and is answered when the HNP has decided; a command that lacks
 * what it needs is refused at once, without a round trip.
 */
import type { NameOp } from './dpm-client'
import type { PmiRank } from './pmi-job'
import type { SpawnParse } from './spawn-block'
import type { PmiFields } from './pmi-wire'

const PMI1_NAMES = { publish_name: 'publish', unpublish_name: 'unpublish', lookup_name: 'lookup' } as const satisfies Record<string, NameOp>
const PMI2_NAMES = { 'name-publish': 'publish', 'name-unpublish': 'unpublish', 'name-lookup': 'lookup' } as const satisfies Record<string, NameOp>

/** PMI-1: `cmd=publish_name service=S port=P` and friends, answered `<op>_result rc=...`. */
export function pmi1NameCommand(s: PmiRank, cmd: keyof typeof PMI1_NAMES, f: PmiFields): void {
  const op = PMI1_NAMES[cmd]
  const result = `${op}_result`
  const service = f.get('service')
  const port = f.get('port')
  if (!service) return s.send(result, { rc: -1, msg: `${cmd} needs service=` })
  if (op === 'publish' && !port) return s.send(result, { rc: -1, msg: 'publish_name needs port=' })
  s.job.dpm.name(s.rank!, op, service, op === 'publish' ? port : undefined, (a) => {
    if (!a.ok) return s.send(result, { rc: -1, msg: a.text ?? 'refused' })
    if (op === 'lookup') return s.send(result, { rc: 0, msg: 'success', port: a.value ?? '' })
    s.send(result, { rc: 0, msg: 'success' })
  })
}

/** PMI-2: `name-publish;name=S;port=P`, `name-unpublish;name=S`, `name-lookup;name=S` -> `port=`. */
export function pmi2NameCommand(s: PmiRank, cmd: keyof typeof PMI2_NAMES, f: PmiFields, reply: (fields: Record<string, string | number>) => void): void {
  const op = PMI2_NAMES[cmd]
  const service = f.get('name')
  const port = f.get('port')
  if (!service) return reply({ rc: -1, errmsg: `${cmd} needs name=` })
  if (op === 'publish' && !port) return reply({ rc: -1, errmsg: 'name-publish needs port=' })
  s.job.dpm.name(s.rank!, op, service, op === 'publish' ? port : undefined, (a) => {
    if (!a.ok) return reply({ rc: -1, errmsg: a.text ?? 'refused' })
    reply(op === 'lookup' ? { rc: 0, port: a.value ?? '' } : { rc: 0 })
  })
}

/** A complete `mcmd=spawn` request: the child job is started by the HNP, then `spawn_result`. */
export function pmi1Spawn(s: PmiRank, parsed: SpawnParse): void {
  if (!parsed.ok) return s.send('spawn_result', { rc: -1, msg: parsed.why })
  s.job.dpm.spawn(s.rank!, parsed.apps, parsed.preput, (a) => {
    if (!a.ok) return s.send('spawn_result', { rc: -1, msg: a.text ?? 'refused' })
    s.send('spawn_result', { rc: 0 })
  })
}
