/**
 * `ompx doctor [--json]`: what can work on this node and why not. Which CRS plugins can
 * checkpoint here (criu missing or failing `criu check`, not root, no CAP_CHECKPOINT_RESTORE,
 * no soft-dirty tracking for pre-dump, criu too old for sockets on this kernel), whether ssh
 * is there for the ssh launcher, and the tools the tests use. Read-only; exits 0 either way.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption, runtimeOptions } from '../args/shared'
import { renderDoctor, summary } from '../doctor/render'
import { doctorReport } from '../doctor/report'
import { createRuntime } from './_context'
import { parseCommand } from './_command'

const specs = [jsonOption, ...runtimeOptions] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'doctor', description: 'Check what works on this node: checkpoint/restart plugins (criu), ssh, test tools' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 0,
      help: {
        usage: 'ompx doctor [--json] [--mca crs_criu_path <path>]',
        examples: ['ompx doctor', 'ompx doctor --json', 'ompx doctor --mca crs_criu_path /usr/local/sbin/criu'],
        notes: ['Run it as the user that runs ompx: crs criu needs root. scripts/install-criu.sh provides a working criu on Debian-like systems.'],
      },
    })
    const { params, registry } = await createRuntime(scanned)
    const report = doctorReport(registry, { criuPath: params.get('crs_criu_path')?.trim() || undefined })
    if (scanned.opts.json) console.log(JSON.stringify({ ...report, summary: summary(report) }, null, 2))
    else console.log(`${renderDoctor(report)}\n\n${summary(report)}`)
  },
})
