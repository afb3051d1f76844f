/** An MCA-style parameter: `--mca key value`, OMPX_MCA_<key>, or a params file line `key = value`. */
export interface ParamDef {
  key: string
  description: string
  default?: string
  /** Who registered it: "core" or "<kind>:<plugin>". */
  owner?: string
  /** How the value is read; "number" and "bool" values are checked when the runtime starts. */
  type?: 'string' | 'number' | 'bool'
}

export type ParamSource = 'default' | 'file' | 'env' | 'cli'

export interface ParamValue {
  def: ParamDef
  value: string | undefined
  source: ParamSource
  /** File path when source is "file", the variable name for "env", "--mca" for "cli". */
  origin?: string
}
