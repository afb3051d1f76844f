/**
 * Glue every command uses: scan its argv with its OptionSpec table, print help on --help, set
 * verbosity. Keeps each command file down to what the command does.
 */
import { renderUsage, type CommandDef } from 'citty'
import { scanOptions, type OptionSpec, type Scanned } from '../args/scan'
import { ActionableError } from '../errors'
import { setVerbose } from '../log'

const parent = { meta: { name: 'ompx' } } as CommandDef<any>

async function commandName(cmd: CommandDef<any>): Promise<string> {
  const meta = typeof cmd.meta === 'function' ? await (cmd.meta as () => any)() : await cmd.meta
  return `ompx ${meta?.name ?? ''}`.trim()
}

/** Print the command's usage on stdout and exit 0. */
export async function showHelp(cmd: CommandDef<any>): Promise<never> {
  process.stdout.write((await renderUsage(cmd, parent)) + '\n')
  process.exit(0)
}

/** Apply what every command does with its scan: --help, --verbose. */
export async function applyCommon(cmd: CommandDef<any>, scanned: Scanned): Promise<Scanned> {
  if (scanned.help) await showHelp(cmd)
  setVerbose(scanned.opts.verbose as boolean | undefined)
  return scanned
}

export async function parseCommand(
  cmd: CommandDef<any>,
  rawArgs: string[],
  specs: OptionSpec[],
  opts: { stopAtPositional?: boolean; maxPositionals?: number } = {},
): Promise<Scanned> {
  const command = await commandName(cmd)
  const scanned = scanOptions(rawArgs, specs, { command, stopAtPositional: opts.stopAtPositional })
  if (!scanned.help && opts.maxPositionals !== undefined && scanned.rest.length > opts.maxPositionals) {
    throw new ActionableError(`unexpected argument "${scanned.rest[opts.maxPositionals]}"; see '${command} --help'`)
  }
  return applyCommon(cmd, scanned)
}
