/** An MCA-style parameter: `--mca key value`, OMPX_MCA_<key>, or a params file line `key = value`. */
export interface ParamDef {
  key: string
  description: string
  default?: string
  /** Who registered it: "core" or "<kind>:<plugin>". */
  owner?: string
  /** How the value is read; every value is checked against its definition when the runtime starts. */
  type?: 'string' | 'number' | 'bool'
  /** number: whole numbers only. */
  integer?: boolean
  /** number: the smallest value allowed. */
  min?: number
  /** number: values must be more than this (for durations that must not be zero). */
  above?: number
  /** number: the largest value allowed. */
  max?: number
  /** string: the only values allowed (empty still means the default). */
  values?: readonly string[]
  /**
   * A check of the value's own shape (a list of globs, ...): what it must be when it does not
   * fit (as in "must be <what>"), else undefined. Run with the other checks at start-up.
   */
  check?: (value: string) => string | undefined
}

export type ParamSource = 'default' | 'file' | 'env' | 'cli'

export interface ParamValue {
  def: ParamDef
  value: string | undefined
  source: ParamSource
  /** File path when source is "file", the variable name for "env", "--mca" for "cli". */
  origin?: string
}
