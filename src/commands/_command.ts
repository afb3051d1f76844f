/**
 * Glue every command uses: scan its argv with its OptionSpec table, print help on --help, set
 * verbosity. Keeps each command file down to what the command does; the scan comes back typed
 * by the table (`OptionValues`), so commands read their options without casts.
 */
import type { CommandDef } from 'citty'
import { scanOptions, type OptionSpec, type OptionValues, type Scanned } from '../args/scan'
import { ActionableError } from '../errors'
import { setVerbose } from '../log'
import { renderHelp, type HelpDoc } from './_help'

async function commandMeta(cmd: CommandDef<any>): Promise<{ name?: string; description?: string }> {
  return (typeof cmd.meta === 'function' ? await (cmd.meta as () => any)() : await cmd.meta) ?? {}
}

async function commandName(cmd: CommandDef<any>): Promise<string> {
  return `ompx ${(await commandMeta(cmd)).name ?? ''}`.trim()
}

/** Print the command's help on stdout and exit 0. */
export async function showHelp(cmd: CommandDef<any>, specs: readonly OptionSpec[], doc: Partial<HelpDoc> = {}): Promise<never> {
  const meta = await commandMeta(cmd)
  const full: HelpDoc = {
    usage: doc.usage ?? `ompx ${meta.name} [options]`,
    description: doc.description ?? meta.description ?? '',
    sections: doc.sections ?? [{ title: 'Options', options: specs }],
    examples: doc.examples,
    notes: doc.notes,
  }
  process.stdout.write(renderHelp(full))
  process.exit(0)
}

/** Apply what every command does with its scan: --help, --verbose. */
export async function applyCommon<O extends object>(
  cmd: CommandDef<any>,
  scanned: Scanned<O>,
  specs: readonly OptionSpec[],
  help?: Partial<HelpDoc>,
): Promise<Scanned<O>> {
  if (scanned.help) await showHelp(cmd, specs, help)
  // Only commands whose table has --verbose (runtimeOptions) can have it set.
  setVerbose('verbose' in scanned.opts && scanned.opts.verbose === true)
  return scanned
}

export async function parseCommand<T extends readonly OptionSpec[]>(
  cmd: CommandDef<any>,
  rawArgs: string[],
  specs: T,
  opts: { stopAtPositional?: boolean; maxPositionals?: number; help?: Partial<HelpDoc> } = {},
): Promise<Scanned<OptionValues<T>>> {
  const command = await commandName(cmd)
  const scanned = scanOptions(rawArgs, specs, { command, stopAtPositional: opts.stopAtPositional })
  if (!scanned.help && opts.maxPositionals !== undefined && scanned.rest.length > opts.maxPositionals) {
    throw new ActionableError(`unexpected argument "${scanned.rest[opts.maxPositionals]}"; see '${command} --help'`)
  }
  return applyCommon(cmd, scanned, specs, opts.help)
}
