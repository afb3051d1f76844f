/**
 * Glue every command uses: scan its argv with its OptionSpec table, print help on --help, set
 * verbosity. Keeps each command file down to what the command does.
 */
import { renderUsage, type CommandDef } from 'citty'
import { scanOptions, type OptionSpec, type Scanned } from '../args/scan'
import { setVerbose } from '../log'

const parent = { meta: { name: 'ompx' } }

export async function parseCommand(
  cmd: CommandDef<any>,
  rawArgs: string[],
  specs: OptionSpec[],
  opts: { stopAtPositional?: boolean; maxPositionals?: number } = {},
): Promise<Scanned> {
  const meta = typeof cmd.meta === 'function' ? await (cmd.meta as () => any)() : await cmd.meta
  const command = `ompx ${meta?.name ?? ''}`.trim()
  const scanned = scanOptions(rawArgs, specs, { command, stopAtPositional: opts.stopAtPositional })
  if (scanned.help) {
    process.stdout.write((await renderUsage(cmd, parent as CommandDef<any>)) + '\n')
    process.exit(0)
  }
  if (opts.maxPositionals !== undefined && scanned.rest.length > opts.maxPositionals) {
    const { ActionableError } = await import('../errors')
    throw new ActionableError(`unexpected argument "${scanned.rest[opts.maxPositionals]}"; see '${command} --help'`)
  }
  setVerbose(scanned.opts.verbose as boolean | undefined)
  return scanned
}
