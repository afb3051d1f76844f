/**
 * `ompx orted`: the per-node daemon role. Started by a launcher (local, ssh, slurm), never by
 * hand: the job secret arrives on stdin, which then stays open as the lifeline to the HNP.
 */
import { defineCommand } from 'citty'
import { join } from 'node:path'
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import type { OptionSpec } from '../args/scan'
import { runtimeOptions } from '../args/shared'
import { ActionableError } from '../errors'
import { Orted } from '../orted/orted-main'
import { transportFor } from '../plugins/registry'
import { readSecretAndWatch } from '../orted/lifeline'
import { createRuntime } from './_context'
import { clientConnect } from '../wire/channel'
import { parseCommand } from './_command'
import { writeStderr } from '../tty'

const specs = [
  { name: 'hnp', arity: 1, valueHint: 'uri', description: 'URI of the HNP to register with (tcp://addr:port)' },
  { name: 'node', arity: 1, valueHint: 'name', description: 'Name of the node this daemon serves' },
  { name: 'node-from-env', arity: 1, valueHint: 'VAR', description: 'Take the node name from this variable (SLURMD_NODENAME under srun)' },
  { name: 'bind', arity: 1, valueHint: 'address', description: "This node's address (simulated nodes: 127.0.1.N)" },
  { name: 'bind-map', arity: 1, valueHint: 'n1=addr,...', description: 'Every node\'s address; this daemon takes its own node\'s (the slurm launcher passes NodeAddr)' },
  { name: 'node-dir-root', arity: 1, valueHint: 'dir', description: 'Node-local directories live under DIR/<node> (session files of this node)' },
  ...runtimeOptions,
] as const satisfies readonly OptionSpec[]

/** This node's entry of `n1=10.0.0.1,n2=10.0.0.2`. */
function addressFromMap(map: string | undefined, node: string): string | undefined {
  for (const pair of map?.split(',') ?? []) {
    const eq = pair.indexOf('=')
    if (eq > 0 && pair.slice(0, eq) === node && eq < pair.length - 1) return pair.slice(eq + 1)
  }
  return undefined
}

/** What this host's name resolves to: the address a node started by srun is known by. */
async function ownAddress(): Promise<string> {
  try {
    return (await lookup(hostname(), { family: 4 })).address
  } catch {
    return '127.0.0.1'
  }
}

export default defineCommand({
  meta: { name: 'orted', description: 'Per-node daemon (started by ompx run / ompx hnp through a launcher)' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 0,
      help: { notes: ['Started by launchers, not by hand: the job secret must arrive as the first line of stdin.'] },
    })
    const o = scanned.opts
    const fromEnv = o['node-from-env'] ? process.env[o['node-from-env']] : undefined
    const node = fromEnv ?? o.node
    if (!o.hnp || !node) throw new ActionableError('ompx orted needs --hnp <uri> and --node <name> (or --node-from-env VAR)')
    const hnp = o.hnp
    let orted: Orted | undefined
    let lifelineClosed = false
    // The launcher went away before we registered. Carry on: the connect attempt ends either
    // way (its handshake has a timeout) and its error says which URI and why; after a success
    // the daemon ends at once below. The timer is only a backstop.
    const goneBeforeRegistering = () =>
      setTimeout(() => {
        if (orted) return
        writeStderr(`ompx orted: the launcher closed our stdin before this daemon registered with the HNP at ${hnp}; exiting\n`)
        process.exit(1)
      }, 15_000)
    const secret = await readSecretAndWatch(() => {
      lifelineClosed = true
      if (orted) orted.end('the launcher closed our stdin (HNP gone)', 1)
      else goneBeforeRegistering()
    })
    process.title = `ompx orted ${node}`
    const { registry, params } = await createRuntime(scanned)
    const channel = await clientConnect(transportFor(registry, hnp), hnp, secret, 'orted')
    const address = o.bind ?? addressFromMap(o['bind-map'], node) ?? (fromEnv ? await ownAddress() : '127.0.0.1')
    orted = new Orted(channel, { node, address, nodeDir: o['node-dir-root'] ? join(o['node-dir-root'], node) : undefined, registry, params })
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => orted!.end(`caught ${sig}`, 1))
    for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => orted!.userSignal(sig))
    orted.start()
    if (lifelineClosed) orted.end('the launcher closed our stdin (HNP gone)', 1)
  },
})
