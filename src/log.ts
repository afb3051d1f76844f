import { createConsola, type ConsolaReporter } from 'consola'

/**
 * One logger for every role. consola hides info under NODE_ENV=test, so the level is set
 * explicitly: OMPX_LOG_LEVEL (0 silent .. 5 trace) or -v on commands; default 3 (info).
 * Everything goes to stderr, one plain line per message (`ompx: warning: ...`), so rank output
 * on stdout stays clean and our messages grep well.
 */
const oneLine: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag && entry.tag !== 'ompx' ? ` [${entry.tag.replace(/^ompx:/, '')}]` : ''
    const kind = ['info', 'log', 'success', 'ready', 'start'].includes(entry.type) ? '' : `${entry.type === 'warn' ? 'warning' : entry.type}: `
    const text = entry.args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')
    process.stderr.write(`ompx${tag}: ${kind}${text}\n`)
  },
}

export const log = createConsola({
  level: Number(process.env.OMPX_LOG_LEVEL ?? 3),
  reporters: [oneLine],
}).withTag('ompx')

export function setVerbose(verbose: boolean | number | undefined): void {
  if (!verbose) return
  log.level = Math.max(log.level, typeof verbose === 'number' ? 3 + verbose : 4)
}
