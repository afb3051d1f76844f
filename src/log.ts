import { createConsola } from 'consola'

/**
 * One logger for every role. consola hides info under NODE_ENV=test, so the level is set
 * explicitly: OMPX_LOG_LEVEL (0 silent .. 5 trace) or -v on commands; default 3 (info).
 * Everything goes to stderr so rank output on stdout stays clean.
 */
export const log = createConsola({
  level: Number(process.env.OMPX_LOG_LEVEL ?? 3),
  stdout: process.stderr,
  stderr: process.stderr,
  formatOptions: { date: false, colors: false, compact: true },
}).withTag('ompx')

export function setVerbose(verbose: boolean | number | undefined): void {
  if (!verbose) return
  log.level = Math.max(log.level, typeof verbose === 'number' ? 3 + verbose : 4)
}
