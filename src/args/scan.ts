/**
 * The option scanner every command uses. citty's parser ignores unknown flags, cannot take
 * `--mca key value` (two values) and cannot stop at the program name the way mpirun does, so
 * options are declared once in an OptionSpec table and scanned here, and `--help` is rendered
 * from the same table (src/commands/_help.ts). Tables are
 * declared `as const satisfies readonly OptionSpec[]`, so `OptionValues` gives each command its
 * options' types (`opts['map-by']: string | undefined`) with no casts at the point of use.
 */
import { ActionableError } from '../errors'

export interface OptionSpec {
  /** Long name without dashes, e.g. "map-by". */
  name: string
  /** Other spellings without dashes: "n", "np", "H". Single- or double-dash both accepted. */
  aliases?: readonly string[]
  /** 0 = flag, 1 = one value, 2 = two values (--mca key value). Default 0. */
  arity?: 0 | 1 | 2
  /** Repeatable: values accumulate in an array. */
  multiple?: boolean
  description: string
  valueHint?: string
  /** Hidden from --help (compatibility spellings). */
  hidden?: boolean
}

/** What the scanner stores for one option: flag boolean, arity 1 string (string[] if multiple), arity 2 [k, v][]. */
export type OptionValue<S extends OptionSpec> = S extends { arity: 2 }
  ? [string, string][]
  : S extends { arity: 1 }
    ? S extends { multiple: true }
      ? string[]
      : string
    : boolean

/** The scanned options of a table, by long name; an option not given is absent. */
export type OptionValues<T extends readonly OptionSpec[]> = { [S in T[number] as S['name']]?: OptionValue<S> }

export interface Scanned<O extends object> {
  opts: O
  /** Positionals, and for `stopAtPositional` everything from the first positional on. */
  rest: string[]
  help: boolean
  /** True when `--` ended the options. */
  dashdash: boolean
}

export interface ScanOptions {
  /** mpirun style: the first non-option word starts the program and its own arguments. */
  stopAtPositional?: boolean
  /** Name for messages, e.g. "ompx run". */
  command: string
}

export function scanOptions<T extends readonly OptionSpec[]>(argv: string[], specs: T, o: ScanOptions): Scanned<OptionValues<T>> {
  const byName = new Map<string, OptionSpec>()
  for (const s of specs) for (const n of [s.name, ...(s.aliases ?? [])]) byName.set(n, s)
  // Filled by the rules OptionValue describes, which is what makes the one cast at the end sound.
  const opts: Record<string, boolean | string | unknown[]> = {}
  const out: Omit<Scanned<object>, 'opts'> = { rest: [], help: false, dashdash: false }
  let i = 0
  while (i < argv.length) {
    const arg = argv[i]!
    if (arg === '--') {
      out.dashdash = true
      out.rest.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      if (o.stopAtPositional) {
        out.rest.push(...argv.slice(i))
        break
      }
      out.rest.push(arg)
      i++
      continue
    }
    if (arg === '--help' || arg === '-h') {
      out.help = true
      i++
      continue
    }
    const eq = arg.indexOf('=')
    const name = (eq > 0 ? arg.slice(0, eq) : arg).replace(/^--?/, '')
    const spec = byName.get(name)
    if (!spec) throw unknownOption(arg, name, specs, o.command)
    const arity = spec.arity ?? 0
    const values: string[] = []
    if (eq > 0) values.push(arg.slice(eq + 1))
    i++
    while (values.length < arity) {
      const v = argv[i]
      if (v === undefined || v === '--') {
        const hint = spec.valueHint ? ` <${spec.valueHint}>` : ''
        throw new ActionableError(`option --${spec.name} needs ${arity === 2 ? 'two values' : 'a value'}${hint}`)
      }
      values.push(v)
      i++
    }
    if (arity === 0 && values.length) {
      if (!/^(true|false|1|0|yes|no)$/i.test(values[0]!)) {
        throw new ActionableError(`option --${spec.name} takes no value (got "${values[0]}")`)
      }
      opts[spec.name] = /^(true|1|yes)$/i.test(values[0]!)
      continue
    }
    const value: boolean | string | [string, string] = arity === 0 ? true : arity === 1 ? values[0]! : [values[0]!, values[1]!]
    if (spec.multiple || arity === 2) {
      const list = opts[spec.name]
      if (Array.isArray(list)) list.push(value)
      else opts[spec.name] = [value]
    } else {
      opts[spec.name] = value
    }
  }
  return { opts: opts as OptionValues<T>, ...out }
}

/** The options of a table with these names, typed as such (e.g. `ompx hnp` takes a few of run's). */
export function pickOptions<S extends OptionSpec, N extends S['name']>(specs: readonly S[], names: readonly N[]): Extract<S, { name: N }>[] {
  return specs.filter((s): s is Extract<S, { name: N }> => names.some((n) => n === s.name))
}

/** The options of a table except the one named. */
export function omitOption<S extends OptionSpec, N extends S['name']>(specs: readonly S[], name: N): Exclude<S, { name: N }>[] {
  return specs.filter((s): s is Exclude<S, { name: N }> => s.name !== name)
}

function unknownOption(arg: string, name: string, specs: readonly OptionSpec[], command: string): ActionableError {
  const names = specs.flatMap((s) => [s.name, ...(s.aliases ?? [])]).concat('help')
  const best = names
    .map((n) => ({ n, d: editDistance(name, n) }))
    .sort((a, b) => a.d - b.d)[0]
  const hint = best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean --${best.n}?)` : ''
  return new ActionableError(`unknown option ${arg}${hint}; see '${command} --help'`)
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!
    dp[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return dp[b.length]!
}
