/**
 * The HNP's app services keep the job's kv store bounded (#11 item 7): a value at most 1 MiB,
 * keys plus values at most snapc_kv_max_bytes. A put past a limit fails with a message naming
 * the limit (the SDK throws it) and leaves the store as it was; replacing a value counts only the
 * difference; a store restored from a snapshot counts too.
 */
import { describe, expect, test } from 'bun:test'
import { AppServices, KV_MAX_BYTES_DEFAULT, KV_VALUE_MAX, type AppServicesPort } from '../../src/hnp/snapc/app-services'
import type { MessageOf } from '../../src/wire/messages'

type Reply = { rank: number; id: number; ok: boolean; value?: Uint8Array; text?: string }

function services(kvMax?: number, kv?: Record<string, string>) {
  const replies: Reply[] = []
  const port: AppServicesPort = {
    size: 2,
    reply: (rank, id, ok, value, text) => void replies.push({ rank, id, ok, value, text }),
    checkpoint: async () => '0 ref',
    checkpointRunning: () => false,
    fenceDone: () => {},
    migrate: async () => '{}',
  }
  const s = new AppServices(port, kv, kvMax)
  let id = 0
  const send = (op: 'put' | 'get', key: string, value?: Uint8Array): Reply | undefined => {
    const m = { t: 'orted.app', jobid: '1.1', rank: 0, id: ++id, op, key, value } as MessageOf<'orted.app'>
    s.request(m)
    return replies.find((r) => r.id === id)
  }
  return { s, replies, put: (k: string, v: Uint8Array) => send('put', k, v), get: (k: string) => send('get', k) }
}

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill)

describe('kv limits', () => {
  test('the default limit is 64 MiB, values at most 1 MiB', () => {
    expect(KV_MAX_BYTES_DEFAULT).toBe(64 * 1024 * 1024)
    const { put, get } = services()
    expect(put('big', bytes(KV_VALUE_MAX))?.ok).toBe(true)
    const r = put('bigger', bytes(KV_VALUE_MAX + 1))
    expect(r?.ok).toBe(false)
    expect(r?.text).toBe(`the value is ${KV_VALUE_MAX + 1} bytes, more than the 1048576 (1 MiB) bytes a kv value may hold`)
    // Refused: nothing stored, a get of it waits.
    expect(get('bigger')).toBeUndefined()
  })

  test('a put past snapc_kv_max_bytes fails naming the parameter; the store stays as it was', () => {
    const { s, put, get } = services(1000)
    expect(put('a', bytes(600))?.ok).toBe(true)
    expect(s.kvSize).toBe(601)
    const r = put('b', bytes(400, 2))
    expect(r?.ok).toBe(false)
    expect(r?.text).toBe("the job's kv store is full: it holds 601 bytes, this put would make it 1002, more than snapc_kv_max_bytes 1000")
    expect(s.kvSize).toBe(601)
    expect(get('b')).toBeUndefined()
    expect(s.snapshotKv()).toEqual({ a: Buffer.from(bytes(600)).toString('base64') })
    // Exactly at the limit is fine.
    expect(put('b', bytes(398, 2))?.ok).toBe(true)
    expect(s.kvSize).toBe(1000)
  })

  test('replacing a value counts only the difference; a smaller value frees room', () => {
    const { s, put } = services(1000)
    expect(put('k', bytes(900))?.ok).toBe(true)
    expect(put('k', bytes(999))?.ok).toBe(true)
    expect(s.kvSize).toBe(1000)
    expect(put('k', bytes(1000))?.ok).toBe(false)
    expect(put('k', bytes(10))?.ok).toBe(true)
    expect(put('other', bytes(900))?.ok).toBe(true)
    expect(s.kvSize).toBe(11 + 905)
  })

  test('many puts stop at the limit instead of growing the HNP without end', () => {
    const { s, put } = services(4 * 1024 * 1024)
    let refused = 0
    for (let i = 0; i < 200; i++) if (!put(`key-${i}`, bytes(64 * 1024))?.ok) refused++
    expect(s.kvSize).toBeLessThanOrEqual(4 * 1024 * 1024)
    expect(refused).toBeGreaterThan(130)
  })

  test('a store restored from a snapshot counts against the limit', () => {
    const { s, put } = services(100, { old: Buffer.from(bytes(90)).toString('base64') })
    expect(s.kvSize).toBe(93)
    expect(put('x', bytes(10))?.ok).toBe(false)
    expect(put('x', bytes(6))?.ok).toBe(true)
  })
})
