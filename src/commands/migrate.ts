/**
 * `ompx migrate [options] <pid>` (orte-migrate): ask the HNP of `ompx run`/`ompx restart`/
 * `ompx hnp` <pid> to move ranks of its job to other nodes while the rest of the job runs on,
 * optionally following its progress, and print where each rank went. The HNP plans and checks
 * the moves (src/hnp/snapc/migrate-service.ts); this side checks only the syntax.
 */
import { defineCommand } from 'citty'
import { migrateSelection, migrateSpecs as specs } from '../args/migrate-options'
import { ActionableError } from '../errors'
import { resolveHnp } from '../wire/contact'
import { connectHnp } from '../tools/hnp-client'
import { migrateJson, migrateStatusLine, migrateSummary, migrateTiming, requestListing } from '../tools/migrate-output'
import { WireError } from '../wire/codec'
import { parseCommand } from './_command'
import { createRuntime } from './_context'

export default defineCommand({
  meta: { name: 'migrate', description: 'Move ranks of a running job to other nodes: ompx migrate [options] <pid>' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 1,
      help: {
        usage: 'ompx migrate [options] <pid>',
        examples: ['ompx migrate --ranks 2,5 4242', 'ompx migrate -x n2 4242', 'ompx migrate -s -r 1 -t n3 4242', 'ompx migrate --json -r 4-7 4242'],
        notes: [
          'The job must run with a checkpointable CRS (--mca crs self or --mca crs criu).',
          'Without --onto each rank goes to the node with the most free slots that is not its own, spare nodes of the allocation first.',
          'Exits 0 once every requested rank runs on its target.',
        ],
      },
    })
    const o = scanned.opts
    const pid = scanned.rest[0]
    if (!pid) throw new ActionableError('ompx migrate needs the PID of ompx run or ompx hnp (ompx ps lists them)')
    if (!/^\d+$/.test(pid)) throw new ActionableError(`"${pid}" is not a PID; give the PID of ompx run or ompx hnp`)
    const sel = migrateSelection(o)
    if (sel.ranks.length === 0 && sel.off.length === 0) {
      throw new ActionableError("nothing to do: name the ranks to move (-r) or the nodes to leave (-x); see 'ompx migrate --help'")
    }
    // As orte-migrate: verbose prints the request first and follows the progress.
    const status = Boolean(o.status || o.verbose)
    if (o.verbose) console.log(requestListing(sel))
    const hnp = resolveHnp(pid)
    const { registry } = await createRuntime(scanned)
    const { channel } = await connectHnp(registry, hnp)
    try {
      if (o.verbose) channel.on('hnp.notice', (m) => console.log(`Plan: ${m.text}`))
      let last = 0
      if (status) {
        channel.on('hnp.migrate-status', (m) => {
          process.stdout.write(migrateStatusLine(m.elapsed - last, m.elapsed, m.state) + '\n')
          last = m.elapsed
        })
      }
      const request = { t: 'tool.migrate', jobid: o.jobid, ...sel, hold: Boolean(o.hold), keepImages: Boolean(o['keep-images']), status, verbose: Boolean(o.verbose) } as const
      // Images may be big and links slow: the HNP bounds the round (snapc_base_timeout), not us.
      const done = await channel.request(request, 'hnp.migrate-done', 24 * 3600_000)
      if (o.json) {
        console.log(JSON.stringify(migrateJson(done), null, 2))
        return
      }
      console.log(migrateSummary(done))
      if (o.timing) console.log(migrateTiming(done))
    } catch (err) {
      // The HNP's refusals (bad rank or node, busy, not checkpointable) are already one line of advice.
      if (err instanceof WireError) throw new ActionableError(err.message)
      throw err
    } finally {
      channel.close()
    }
  },
})
