/** Options several commands share, declared once. */
import type { OptionSpec, OptionValues } from './scan'

export const mcaOption = {
  name: 'mca',
  aliases: ['gmca'],
  arity: 2,
  multiple: true,
  valueHint: 'key value',
  description: 'Set an MCA parameter, e.g. --mca mapper node (repeatable)',
} as const satisfies OptionSpec

export const pluginDirOption = {
  name: 'plugin-dir',
  arity: 1,
  multiple: true,
  valueHint: 'dir',
  description: 'Also load plugins from this directory (repeatable)',
} as const satisfies OptionSpec

export const jsonOption = { name: 'json', description: 'Print machine-readable JSON' } as const satisfies OptionSpec

export const verboseOption = {
  name: 'verbose',
  aliases: ['v'],
  description: 'Print debug logging to stderr',
} as const satisfies OptionSpec

/** The options that configure the runtime itself (parameters and plugins). */
export const runtimeOptions = [mcaOption, pluginDirOption, verboseOption] as const satisfies readonly OptionSpec[]

/** `mca`: [key, value][]; `plugin-dir`: string[]; `verbose`: boolean. */
export type RuntimeOptionValues = OptionValues<typeof runtimeOptions>
