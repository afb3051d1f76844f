/**
 * One logger for every role, backed by consola. consola is loaded on the first message that
 * passes the level check: it costs ~15 MB of resident memory, and a normal run logs nothing,
 * so `ompx run` and every daemon start without it.
 *
 * consola hides info under NODE_ENV=test, so the level is set explicitly: OMPX_LOG_LEVEL
 * (0 silent .. 5 trace) or -v on commands; default 3 (info). Everything goes to stderr, one
 * plain line per message (`ompx: warning: ...`), so rank output on stdout stays clean.
 */
import type { ConsolaInstance, ConsolaReporter } from 'consola'
import { writeStderr } from './tty'

const oneLine: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag && entry.tag !== 'ompx' ? ` [${entry.tag.replace(/^ompx:/, '')}]` : ''
    const kind = ['info', 'log', 'success', 'ready', 'start'].includes(entry.type) ? '' : `${entry.type === 'warn' ? 'warning' : entry.type}: `
    const text = entry.args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')
    writeStderr(`ompx${tag}: ${kind}${text}\n`)
  },
}

let base: ConsolaInstance | undefined
function consola(): ConsolaInstance {
  // require() keeps the logger synchronous; Bun loads ESM packages this way too.
  const { createConsola } = require('consola') as typeof import('consola')
  return (base ??= createConsola({ level: 5, reporters: [oneLine] }))
}

const LEVELS = { error: 0, warn: 1, info: 3, debug: 4 } as const
type Method = keyof typeof LEVELS

export interface Logger {
  level: number
  error(...a: unknown[]): void
  warn(...a: unknown[]): void
  info(...a: unknown[]): void
  debug(...a: unknown[]): void
  withTag(tag: string): Logger
}

function makeLogger(tag: string, shared: { level: number }): Logger {
  const emit = (m: Method) => (...a: unknown[]) => {
    if (LEVELS[m] <= shared.level) (consola().withTag(tag)[m] as (...x: unknown[]) => void)(...a)
  }
  return {
    get level() {
      return shared.level
    },
    set level(v: number) {
      shared.level = v
    },
    error: emit('error'),
    warn: emit('warn'),
    info: emit('info'),
    debug: emit('debug'),
    withTag: (t: string) => makeLogger(t, shared),
  }
}

export const log = makeLogger('ompx', { level: Number(process.env.OMPX_LOG_LEVEL ?? 3) })

export function setVerbose(verbose: boolean | number | undefined): void {
  if (!verbose) return
  log.level = Math.max(log.level, typeof verbose === 'number' ? 3 + verbose : 4)
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' }
/** C0/C1 controls, DEL, and the Unicode line separators and bidi controls a terminal honours. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/**
 * Text a stranger chose (a peer's message type, a reason, a key), made safe to put in a log
 * line: control characters shown escaped (`\n`, `\e`, `\x07`, `\u202e`), so nobody can forge
 * a line or send escape sequences to the user's terminal, and at most `max` characters.
 */
export function untrusted(text: unknown, max = 120): string {
  let s = String(text)
  const extra = s.length - max
  if (extra > 0) s = s.slice(0, max)
  s = s.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0)
    return ESCAPES[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
  })
  return extra > 0 ? `${s}... (${extra} more characters)` : s
}
