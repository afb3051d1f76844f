/**
 * `ompx plugins [--kind K] [--json]`: every plugin the registry found (built-in and from plugin
 * directories), with priority and source, and those that failed to load and why.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption, runtimeOptions } from '../args/shared'
import { ActionableError } from '../errors'
import { PLUGIN_KINDS, type PluginKind } from '../params/core'
import { createRuntime } from './_context'
import { parseCommand } from './_command'
import { renderTable } from '../tools/table'

const specs = [
  ...runtimeOptions,
  jsonOption,
  { name: 'kind', arity: 1, valueHint: 'kind', description: `Only plugins of this kind (${PLUGIN_KINDS.join(', ')})` },
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'plugins', description: 'List the available plugins (built-in and external) and any that failed to load' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, { maxPositionals: 0 })
    const kind = scanned.opts.kind
    if (kind !== undefined && !isPluginKind(kind)) {
      throw new ActionableError(`unknown plugin kind "${kind}" (kinds: ${PLUGIN_KINDS.join(', ')})`)
    }
    const json = !!scanned.opts.json
    // The text listing shows failures itself; JSON readers still get them on stderr too.
    const { registry } = await createRuntime(scanned, { warnFailures: json })
    const entries = registry.list(kind).map(({ plugin: _, ...e }) => e)
    if (json) {
      console.log(JSON.stringify({ plugins: entries, failures: registry.failures }, null, 2))
      return
    }
    const rows = entries.map((e) => [
      e.kind,
      e.name,
      String(e.priority),
      e.overrides ? `${e.source} (overrides ${e.overrides})` : e.source,
      e.description,
    ])
    console.log(rows.length ? renderTable(['KIND', 'NAME', 'PRIORITY', 'SOURCE', 'DESCRIPTION'], rows) : 'no plugins')
    if (registry.failures.length) {
      console.log(`\nnot loaded (${registry.failures.length}):`)
      for (const f of registry.failures) console.log(`  ${f.file}: ${f.reason}`)
    }
  },
})

function isPluginKind(kind: string): kind is PluginKind {
  return PLUGIN_KINDS.some((k) => k === kind)
}
