/**
 * `ompx ps [pid]`: what a running HNP is doing: its nodes, its jobs, and every rank's node,
 * pid, state and uptime (orte-ps). With several HNPs running, name one by pid.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption, runtimeOptions } from '../args/shared'
import { resolveHnp } from '../wire/contact'
import { formatUptime, renderTable } from '../tools/table'
import type { MessageOf } from '../wire/messages'
import { parseCommand } from './_command'

const specs = [
  { name: 'hnp', arity: 1, valueHint: 'pid|uri|file', description: 'The HNP to ask (default: the only one running)' },
  jsonOption,
  ...runtimeOptions,
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'ps', description: 'Show the jobs, ranks, nodes, pids and states of a running HNP' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 1,
      help: { usage: 'ompx ps [pid] [--json]', examples: ['ompx ps', 'ompx ps 12345 --json'] },
    })
    const hnp = resolveHnp(scanned.rest[0] ?? scanned.opts.hnp)
    // Only with an HNP to ask: the runtime, the plugins and the wire code (issue #16: `ompx ps`
    // with none running answers from the contact files alone).
    const [{ createRuntime }, { connectHnp }] = await Promise.all([import('./_context'), import('../tools/hnp-client')])
    const { registry } = await createRuntime(scanned)
    const { channel } = await connectHnp(registry, hnp)
    const reply = await channel.request({ t: 'tool.ps' }, 'hnp.ps')
    channel.close()
    if (scanned.opts.json) console.log(JSON.stringify({ hnp: reply.hnp, jobs: reply.jobs }, null, 2))
    else console.log(renderPs(reply))
  },
})

function renderPs(reply: MessageOf<'hnp.ps'>, now = Date.now()): string {
  const { hnp, jobs } = reply
  const out = [`HNP ${hnp.pid} at ${hnp.uri}, up ${formatUptime(now - hnp.started)}, nodes: ${hnp.nodes.join(', ') || '(none)'}`]
  if (jobs.length === 0) out.push('', 'no jobs')
  for (const job of jobs) {
    const spawned = job.parent === undefined ? '' : `  (spawned by job ${job.parent})`
    out.push('', `Job ${job.jobid}  ${job.state}  up ${formatUptime(now - job.started)}  ${job.app}${spawned}`)
    const rows = job.procs.map((p) => [
      String(p.rank),
      p.node,
      p.pid === null ? '-' : String(p.pid),
      p.state,
      p.startedAt === null ? '-' : formatUptime(now - p.startedAt),
    ])
    out.push(renderTable(['  RANK', 'NODE', 'PID', 'STATE', 'UPTIME'], rows.map((r) => [`  ${r[0]}`, ...r.slice(1)])))
  }
  return out.join('\n')
}
