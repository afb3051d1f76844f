/**
 * Params files (`~/.ompx/mca-params.conf`, `./ompx-params.conf`): `key = value` lines, `#`
 * comments and blank lines. A bad line stops the run with file:line, because silently skipping
 * it would run the job with a setting the user believes is applied.
 */
import { readFileSync } from 'node:fs'
import { ActionableError, errorMessage } from '../errors'

/** Keys are plain words so they also work as OMPX_MCA_<key> variable names. */
export const PARAM_KEY = /^[A-Za-z][A-Za-z0-9_]*$/

export interface FileSetting {
  key: string
  value: string
  line: number
}

export function parseParamsFile(text: string, path: string): FileSetting[] {
  const out: FileSetting[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const eq = line.indexOf('=')
    const where = `${path}:${i + 1}`
    if (eq < 0) throw new ActionableError(`${where}: expected "key = value", got "${clip(line)}"`)
    const key = line.slice(0, eq).trim()
    if (!PARAM_KEY.test(key)) {
      throw new ActionableError(`${where}: "${clip(key)}" is not a parameter name (letters, digits and _)`)
    }
    out.push({ key, value: unquote(line.slice(eq + 1).trim()), line: i + 1 })
  })
  return out
}

/** Read and parse a params file; a missing file is simply no settings. */
export function readParamsFile(path: string): FileSetting[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return []
    throw new ActionableError(`cannot read params file ${path}: ${errorMessage(err)}`)
  }
  return parseParamsFile(text, path)
}

/** `key = "a b"` and `key = 'a b'` keep inner spaces; quotes are otherwise optional. */
function unquote(v: string): string {
  const q = v[0]
  return v.length >= 2 && (q === '"' || q === "'") && v.endsWith(q) ? v.slice(1, -1) : v
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}
