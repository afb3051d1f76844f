/** Options several commands share, declared once. */
import type { OptionSpec } from './scan'

export const mcaOption: OptionSpec = {
  name: 'mca',
  aliases: ['gmca'],
  arity: 2,
  multiple: true,
  valueHint: 'key value',
  description: 'Set an MCA parameter, e.g. --mca mapper node (repeatable)',
}

export const pluginDirOption: OptionSpec = {
  name: 'plugin-dir',
  arity: 1,
  multiple: true,
  valueHint: 'dir',
  description: 'Also load plugins from this directory (repeatable)',
}

export const jsonOption: OptionSpec = { name: 'json', description: 'Print machine-readable JSON' }

export const verboseOption: OptionSpec = {
  name: 'verbose',
  aliases: ['v'],
  description: 'Print debug logging to stderr',
}

/** The options that configure the runtime itself (parameters and plugins). */
export const runtimeOptions: OptionSpec[] = [mcaOption, pluginDirOption, verboseOption]
