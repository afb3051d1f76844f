/**
 * The HostApi handed to plugin factories. External plugins cannot import anything bundled in the
 * binary, so everything they may need from us comes through this object.
 */
import { ActionableError } from '../errors'
import { log } from '../log'
import type { Params } from '../params/params'
import { spawnRank } from '../runtime/rank-process'
import { VERSION } from '../version'
import type { HostApi } from './types'

export interface PluginHost {
  host: HostApi
  /**
   * A factory names its plugin only by returning it, so the logger starts tagged with the file
   * and is re-tagged `<kind>:<name>` once the plugin is known; captured `host.log` follows.
   */
  retag(tag: string): void
}

export function createHost(params: Params, tag: string): PluginHost {
  let logger = log.withTag(tag)
  const host: HostApi = {
    version: VERSION,
    log: {
      info: (...a) => logger.info(...(a as [unknown])),
      warn: (...a) => logger.warn(...(a as [unknown])),
      debug: (...a) => logger.debug(...(a as [unknown])),
      error: (...a) => logger.error(...(a as [unknown])),
    },
    param: (key) => params.get(key),
    ActionableError,
    spawnRank,
  }
  return { host, retag: (t) => void (logger = log.withTag(t)) }
}
