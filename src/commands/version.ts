/** `ompx version [--json]`: the ompx version and the Bun runtime and platform it was built for. */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption } from '../args/shared'
import { VERSION } from '../version'
import { parseCommand } from './_command'

const specs = [jsonOption] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'version', description: 'Print the ompx version and the Bun runtime it was built with' },
  async run({ rawArgs, cmd }) {
    const { opts } = await parseCommand(cmd, rawArgs, specs, { maxPositionals: 0 })
    const info = { ompx: VERSION, bun: Bun.version, platform: `${process.platform}-${process.arch}` }
    if (opts.json) console.log(JSON.stringify(info))
    else console.log(`ompx ${info.ompx} (bun ${info.bun}, ${info.platform})`)
  },
})
