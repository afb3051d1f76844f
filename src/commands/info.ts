/**
 * `ompx info` (ompi_info): version, params files, plugin directories and counts; with `--param`,
 * every parameter with its value, where it was set and what it does.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { jsonOption, runtimeOptions } from '../args/shared'
import { ActionableError } from '../errors'
import type { ParamValue } from '../params/types'
import { PLUGIN_KINDS } from '../params/core'
import { createRuntime } from './_context'
import { VERSION } from '../version'
import { parseCommand } from './_command'
import { renderTable } from '../tools/table'

const specs = [
  ...runtimeOptions,
  jsonOption,
  {
    name: 'param',
    aliases: ['params'],
    description: 'List parameters with value, source and description; optionally only those of a kind (e.g. --param mapper)',
  },
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'info', description: 'Show version, plugin search path and plugin counts, or all parameters (--param)' },
  async run({ rawArgs, cmd }) {
    const scanned = await parseCommand(cmd, rawArgs, specs, {
      maxPositionals: 1,
      help: { usage: 'ompx info [--param [kind|plugin|core|all]] [--json]', examples: ['ompx info', 'ompx info --param mapper'] },
    })
    const filter = scanned.rest[0]
    if (filter !== undefined && !scanned.opts.param) {
      throw new ActionableError(`unexpected argument "${filter}" (did you mean 'ompx info --param ${filter}'?)`)
    }
    const { params, registry } = await createRuntime(scanned)
    const json = !!scanned.opts.json

    if (scanned.opts.param) {
      const list = params.list().filter((p) => matches(p, filter))
      if (!list.length) {
        throw new ActionableError(`no parameters match "${filter}" (try a kind: ${PLUGIN_KINDS.join(', ')}, or core)`)
      }
      if (json) {
        const out = list.map((p) => ({
          key: p.def.key,
          value: p.value ?? null,
          source: p.source,
          origin: p.origin ?? null,
          default: p.def.default ?? null,
          owner: p.def.owner ?? null,
          type: p.def.type ?? 'string',
          description: p.def.description,
        }))
        console.log(JSON.stringify(out, null, 2))
      } else {
        const rows = list.map((p) => [p.def.key, show(p.value), sourceText(p), p.def.owner ?? '', p.def.description])
        console.log(renderTable(['KEY', 'VALUE', 'SOURCE', 'OWNER', 'DESCRIPTION'], rows))
      }
      return
    }

    const counts = Object.fromEntries(PLUGIN_KINDS.map((k) => [k, registry.list(k).length]))
    const info = {
      ompx: VERSION,
      bun: Bun.version,
      platform: `${process.platform}-${process.arch}`,
      executable: process.execPath,
      paramsFiles: params.files,
      pluginDirs: registry.dirs.map((d) => ({ dir: d.dir, from: d.origin, status: d.status, files: d.files ?? 0 })),
      plugins: counts,
      failures: registry.failures,
    }
    if (json) {
      console.log(JSON.stringify(info, null, 2))
      return
    }
    const lines = [
      `ompx ${info.ompx}`,
      `build:        bun ${info.bun}`,
      `platform:     ${info.platform}`,
      `executable:   ${info.executable}`,
      `params files: ${info.paramsFiles.join(', ')}`,
      'plugin dirs searched:',
      ...info.pluginDirs.map((d) => `  ${d.dir}  (${d.from}; ${d.status === 'ok' ? `${d.files} files` : d.status})`),
      `plugins:      ${PLUGIN_KINDS.map((k) => `${k} ${counts[k]}`).join(', ')}`,
    ]
    if (info.failures.length) lines.push(`not loaded:   ${info.failures.length} (see 'ompx plugins')`)
    console.log(lines.join('\n'))
  },
})

/** A kind or word selects owner `<w>:*`, owner `<w>`, key `<w>` and keys `<w>_*`; "all" selects everything. */
function matches(p: ParamValue, filter: string | undefined): boolean {
  if (filter === undefined || filter === 'all') return true
  const owner = p.def.owner ?? ''
  const key = p.def.key
  return owner === filter || owner.startsWith(`${filter}:`) || key === filter || key.startsWith(`${filter}_`)
}

function show(v: string | undefined): string {
  return v === undefined || v === '' ? '""' : v
}

function sourceText(p: ParamValue): string {
  return p.source === 'file' ? p.origin! : p.source
}
