/**
 * How every tool (ps, checkpoint, migrate, run --hnp) reaches an HNP: resolve the reference (pid,
 * contact file, URI or "the only one running"), connect over its transport, authenticate with
 * the job secret from the contact file.
 */
import { ActionableError, errorMessage } from '../errors'
import { transportFor, type Registry } from '../plugins/registry'
import type { Channel } from '../wire/channel'
import { clientConnect } from '../wire/channel'
import { resolveHnp, type HnpRef } from '../wire/contact'
import type { Role } from '../wire/messages'

/**
 * `ref` may be resolved already: tools resolve it before building their runtime, so "no HNP
 * running" (the common mistake) is answered without loading every plugin first.
 */
export async function connectHnp(registry: Registry, ref: HnpRef | string | undefined, role: Role = 'tool'): Promise<{ channel: Channel; hnp: HnpRef }> {
  const hnp = typeof ref === 'object' ? ref : resolveHnp(ref)
  try {
    return { channel: await clientConnect(transportFor(registry, hnp.uri), hnp.uri, hnp.secret, role), hnp }
  } catch (err) {
    if (err instanceof ActionableError) throw err
    const who = hnp.pid ? `HNP ${hnp.pid}` : 'the HNP'
    throw new ActionableError(`cannot reach ${who} at ${hnp.uri}: ${errorMessage(err)}`)
  }
}
