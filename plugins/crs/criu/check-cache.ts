/**
 * `criu check` takes about 50 ms (it probes the kernel, runs iptables) and every daemon and tool
 * that may use crs criu needs its verdict, so a restart would pay it once per node before any
 * rank comes back. A passing verdict is remembered across processes in the user's 0700 session
 * directory, keyed by what can change it: the criu binary (real path, size, mtime), the kernel
 * (boot id) and the user. A failing check is never cached: it is re-run, so a fix shows at once.
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sessionRoot } from '../../../src/runtime/session'

const FILE = 'criu-check.json'

interface Entry {
  key: string
  version: string
}

/** The first 4 KiB of a file as text (enough for a wrapper script; a real criu is megabytes). */
function head(path: string): string {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(4096)
    return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0))
  } finally {
    closeSync(fd)
  }
}

/** The identity of a passing check of `path`, or null when the binary cannot be stat'ed. */
function keyOf(path: string): string | null {
  try {
    const real = realpathSync(path)
    const st = statSync(real)
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    // The wrapper of scripts/install-criu.sh runs the real criu from its cache dir: include it.
    let target = ''
    try {
      const m = /"([^"]+)"\s+"\$@"/.exec(head(real))
      if (m) target = `:${m[1]}:${statSync(m[1]!).mtimeMs}`
    } catch {}
    return `${real}:${st.size}:${st.mtimeMs}:${boot}:${process.getuid?.()}${target}`
  } catch {
    return null
  }
}

function cacheFile(): string | null {
  try {
    return join(sessionRoot(), FILE)
  } catch {
    return null
  }
}

function readAll(file: string): Record<string, Entry> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Entry>
  } catch {
    return {}
  }
}

/** The version of `path` if it passed `criu check` before, on this boot, unchanged since. */
export function cachedPass(path: string): string | null {
  const file = cacheFile()
  const key = keyOf(path)
  if (!file || !key) return null
  const e = readAll(file)[path]
  return e && e.key === key ? e.version : null
}

/** Remember that `path` (criu `version`) passed `criu check`. Best effort: a cache, not a record. */
export function rememberPass(path: string, version: string): void {
  const file = cacheFile()
  const key = keyOf(path)
  if (!file || !key) return
  try {
    const all = readAll(file)
    all[path] = { key, version }
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 })
    renameSync(tmp, file)
  } catch {
    // An unwritable session dir only costs the next process its own `criu check`.
  }
}
