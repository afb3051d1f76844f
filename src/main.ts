/**
 * Entry point of the single binary. Picks the role from the first word, runs it through citty,
 * and turns every error into one line on stderr and a non-zero exit (never a stack trace unless
 * OMPX_DEBUG is set).
 */
import { setNoColor } from './tty'
import { runCommand } from 'citty'
import { renderRootHelp } from './root-help'
import root, { subCommands } from './cli'
import { editDistance } from './args/scan'
import { ActionableError, errorMessage } from './errors'
import { VERSION } from './version'

if (setNoColor) delete process.env.NO_COLOR

async function main(argv: string[]): Promise<void> {
  const first = argv[0]
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(await renderRootHelp())
    process.exit(first === undefined ? 1 : 0)
  }
  if (first === '--version' || first === '-V') {
    console.log(VERSION)
    return
  }
  if (!(first in subCommands)) {
    const best = Object.keys(subCommands).sort((a, b) => editDistance(first, a) - editDistance(first, b))[0]!
    const hint = editDistance(first, best) <= 2 ? ` (did you mean '${best}'?)` : ''
    const what = first.startsWith('-') ? 'option' : 'command'
    throw new ActionableError(`unknown ${what} '${first}'${hint}; see 'ompx --help'`)
  }
  await runCommand(root, { rawArgs: argv })
}

function fail(err: unknown): never {
  const sub = process.argv[2] && process.argv[2] in subCommands ? ` ${process.argv[2]}` : ''
  if (err instanceof ActionableError) {
    process.stderr.write(`ompx${sub}: ${err.message}\n`)
    process.exit(err.exitCode)
  }
  process.stderr.write(`ompx${sub}: internal error: ${errorMessage(err).split('\n')[0]}\n`)
  if (process.env.OMPX_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? err}\n`)
  process.exit(70)
}

process.on('unhandledRejection', fail)
main(process.argv.slice(2)).catch(fail)
