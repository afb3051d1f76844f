/**
 * Entry point of the single binary. Picks the role from the first word, loads only that role's
 * module, runs it, and turns every error into one line on stderr and a non-zero exit (never a
 * stack trace unless OMPX_DEBUG is set).
 *
 * The dispatch is ours rather than citty's runCommand: every command scans its own argv
 * (src/args/scan.ts) and renders its own help, so citty's parse was thrown away, and loading its
 * parser (node:util) cost every start of every role a few ms (issue #16).
 */
import { setNoColor, writeStderr } from './tty'
import { renderRootHelp } from './root-help'
import { subCommands } from './cli'
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
  // Ranks and child roles must never inherit a half-configured terminal state from us.
  process.title = 'ompx'
  const cmd = await subCommands[first as keyof typeof subCommands]()
  // Commands read rawArgs only (their own scan); citty's parsed args were never used.
  await cmd.run!({ rawArgs: argv.slice(1), args: {} as never, cmd, data: undefined })
}

function fail(err: unknown): never {
  const sub = process.argv[2] && process.argv[2] in subCommands ? ` ${process.argv[2]}` : ''
  if (err instanceof ActionableError) {
    writeStderr(`ompx${sub}: ${err.message}\n`)
    process.exit(err.exitCode)
  }
  writeStderr(`ompx${sub}: internal error: ${errorMessage(err).split('\n')[0]}\n`)
  if (process.env.OMPX_DEBUG) writeStderr(`${(err as Error)?.stack ?? err}\n`)
  process.exit(70)
}

process.on('unhandledRejection', fail)
main(process.argv.slice(2)).catch(fail)
