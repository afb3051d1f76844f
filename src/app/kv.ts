/**
 * The job-wide key-value store and named barriers as a rank uses them (docs/app-sdk.md, put /
 * get / barrier): arguments are checked here, with the protocol's limits, before anything is
 * sent. Standalone (not run under ompx) the store is a local map and barriers return at once,
 * as long as the process is the job's only rank.
 */
import { MAX_VALUE, badKey, toB64, toBytes } from './lines'
import { fail, type Reply } from './requests'

export type Send = (what: string, verb: string, args?: string) => Promise<Reply>

export class Kv {
  private local = new Map<string, Uint8Array>()

  constructor(
    private readonly send: Send,
    private readonly standalone: boolean,
    private readonly size: () => number,
  ) {}

  async put(key: string, value: Uint8Array | string): Promise<void> {
    const bytes = toBytes(value)
    const bad = badKey(key) ?? (bytes.length > MAX_VALUE ? `the value is larger than ${MAX_VALUE} bytes` : null)
    if (bad) throw fail(`put("${key}")`, bad)
    if (this.standalone) return void this.local.set(this.soloCheck('put', key), bytes.slice())
    await this.send(`put("${key}")`, 'PUT', `${key} ${toB64(bytes)}`)
  }

  async get(key: string): Promise<Uint8Array> {
    const bad = badKey(key)
    if (bad) throw fail(`get("${key}")`, bad)
    if (this.standalone) {
      const v = this.local.get(this.soloCheck('get', key))
      if (!v) throw fail(`get("${key}")`, 'no value was put under this key (standalone: this process is the only rank)')
      return v.slice()
    }
    const { value } = await this.send(`get("${key}")`, 'GET', key)
    if (!value) throw fail(`get("${key}")`, 'the daemon answered without a value')
    return value
  }

  async barrier(name = 'default'): Promise<void> {
    const bad = badKey(name)
    if (bad) throw fail(`barrier("${name}")`, bad)
    if (this.standalone) return void this.soloCheck('barrier', name)
    await this.send(`barrier("${name}")`, 'BARRIER', name)
  }

  private soloCheck(what: string, key: string): string {
    if (this.size() > 1) throw fail(`${what}("${key}")`, `this job has no app coordinator (OMPX_COORD_SOCK unset), so ranks cannot exchange data`)
    return key
  }
}
