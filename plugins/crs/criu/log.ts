/**
 * Reading criu's logs for the one line that says why something failed. criu logs every error as
 * `(00.012345) Error (criu/file.c:123): what went wrong`, usually followed by generic ones
 * ("Dumping FAILED.") that say nothing; the first real one is the cause.
 */
import { existsSync, readFileSync } from 'node:fs'

/**
 * Error lines criu prints on every run here and that are not the cause of anything: without
 * CAP_SYS_RESOURCE it cannot raise its own fd limit (docs/criu.md).
 */
const BENIGN = [/Can't setup RLIMIT_NOFILE for self/]

/** Generic lines (follow-ups, a helper's exit status): used only when nothing more specific was logged. */
const GENERIC = [/exited, status=\d+/, /Dumping FAILED/, /Restoring FAILED/, /Dump files \(pid: \d+\) failed/, /One of more action scripts failed/]

/** An error from a criu run: the cause line (or a summary), the log it came from, criu's exit code. */
export class CriuError extends Error {
  constructor(
    message: string,
    readonly logPath: string | null,
    readonly reason: string | null,
    readonly exitCode: number | null,
  ) {
    super(message)
    this.name = 'CriuError'
  }
}

/** Drop the "(00.012345) " timestamp and the "pie: 2: " / "2: " task prefixes of restore logs. */
function clean(line: string): string {
  return line
    .replace(/^\(\s*\d+\.\d+\)\s*/, '')
    .replace(/^(pie:\s*)?\d+:\s*/, '')
    .trim()
}

/**
 * The line of `text` (a log, or criu's own stderr) that explains the failure: the first Error
 * (or BUG) line that is neither benign nor a generic follow-up, else the first generic one, else
 * null.
 */
export function causeLine(text: string): string | null {
  let generic: string | null = null
  for (const raw of text.split('\n')) {
    if (!/\b(Error|BUG)\b/.test(raw)) continue
    const line = clean(raw)
    if (BENIGN.some((re) => re.test(line))) continue
    if (GENERIC.some((re) => re.test(line))) {
      generic ??= line
      continue
    }
    return line
  }
  return generic
}

/** causeLine of a log file; null when the file is missing or unreadable. */
export function causeLineOf(logPath: string): string | null {
  try {
    return existsSync(logPath) ? causeLine(readFileSync(logPath, 'utf8')) : null
  } catch {
    return null
  }
}

/**
 * A one-line error for a failed `criu <what>`: "criu dump of pid 123 failed: <cause> (log: <path>)".
 * `stderr` is criu's own output, which holds the errors of runs that died before opening the log.
 */
export function criuFailure(what: string, logPath: string | null, exitCode: number | null, stderr = ''): CriuError {
  const cause = (logPath ? causeLineOf(logPath) : null) ?? causeLine(stderr) ?? lastLine(stderr)
  const status = exitCode === null ? 'was killed' : `exited with ${exitCode}`
  const why = cause ?? `criu ${status} without logging an error`
  const where = logPath ? ` (log: ${logPath})` : ''
  return new CriuError(`${what} failed: ${why}${where}`, logPath, cause, exitCode)
}

function lastLine(text: string): string | null {
  const l = text
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
  return l.length ? l[l.length - 1]! : null
}

/**
 * criu's advice names criu's own options, which users of ompx do not pass: say which ompx
 * parameter does it. Each entry: criu's words, and what ompx users should read instead.
 */
const HINTS = [
  [/[,.]? consider using --tcp-established option\.?/i, '; checkpoint established TCP connections with --mca crs_criu_tcp_established 1'],
  [/[,.]? consider using (the )?--ext-unix-sk option( to allow restoring it)?\.?/i, '; allow unix sockets whose peer is outside the rank with --mca crs_criu_ext_unix_sk 1'],
  [/[,.]? consider using --shell-job option\.?/i, '; allow a session outside the rank with --mca crs_criu_shell_job 1'],
] as const satisfies readonly (readonly [RegExp, string])[]

/** `message` with criu's "consider using --<option>" advice put in ompx's terms. */
export function withHint(message: string): string {
  for (const [criuSays, ompxSays] of HINTS) if (criuSays.test(message)) return message.replace(criuSays, ompxSays)
  return message
}
