/** `ompx --help`: the roles, each with its one-line description, in the order users need them. */
import { renderHelp } from './commands/_help'
import { subCommands } from './cli'
import { VERSION } from './version'

export async function renderRootHelp(): Promise<string> {
  const rows: string[] = []
  const names = Object.keys(subCommands) as (keyof typeof subCommands)[]
  const col = Math.max(...names.map((n) => n.length)) + 4
  for (const name of names) {
    const cmd = await subCommands[name]()
    const meta = (typeof cmd.meta === 'function' ? await (cmd.meta as () => any)() : await cmd.meta) ?? {}
    rows.push(`  ${name.padEnd(col)}${meta.description ?? ''}`)
  }
  const head = renderHelp({
    usage: 'ompx <command> [options]',
    description: `ompx ${VERSION}: parallel job runtime with checkpoint, restart and migration, in one executable.`,
    sections: [],
  })
  return `${head}\nCommands:\n${rows.join('\n')}\n\nRun 'ompx <command> --help' for a command's options.\n`
}
