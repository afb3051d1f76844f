/**
 * Glue every command uses: scan its argv with its OptionSpec table, print help on --help, set
 * verbosity. Keeps each command file down to what the command does.
 */
import type { CommandDef } from 'citty'
import { scanOptions, type OptionSpec, type Scanned } from '../args/scan'
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
export async function showHelp(cmd: CommandDef<any>, specs: OptionSpec[], doc: Partial<HelpDoc> = {}): Promise<never> {
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
export async function applyCommon(cmd: CommandDef<any>, scanned: Scanned, specs: OptionSpec[], help?: Partial<HelpDoc>): Promise<Scanned> {
  if (scanned.help) await showHelp(cmd, specs, help)
  setVerbose(scanned.opts.verbose as boolean | undefined)
  return scanned
}

export async function parseCommand(
  cmd: CommandDef<any>,
  rawArgs: string[],
  specs: OptionSpec[],
  opts: { stopAtPositional?: boolean; maxPositionals?: number; help?: Partial<HelpDoc> } = {},
): Promise<Scanned> {
  const command = await commandName(cmd)
  const scanned = scanOptions(rawArgs, specs, { command, stopAtPositional: opts.stopAtPositional })
  if (!scanned.help && opts.maxPositionals !== undefined && scanned.rest.length > opts.maxPositionals) {
    throw new ActionableError(`unexpected argument "${scanned.rest[opts.maxPositionals]}"; see '${command} --help'`)
  }
  return applyCommon(cmd, scanned, specs, opts.help)
}
