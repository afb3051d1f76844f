/**
 * Contact files: how tools find a running HNP by its pid. Each HNP keeps
 * $TMPDIR/ompx-<user>/hnp-<pid>.json (dir 0700, file 0600: it holds the job secret) with its URI
 * and secret. Files of HNPs that died without cleaning up are noticed and removed on listing.
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ActionableError, errorMessage } from '../errors'
import { pidAlive, sessionRoot } from '../runtime/session'
import { log } from '../log'
import { parseSecret } from './secret'

export interface HnpContact {
  pid: number
  uri: string
  /** Job secret, hex. */
  secret: string
  /** ms since the epoch. */
  started: number
  jobs: string[]
  version: string
  /** The HNP's executable, to tell it from an unrelated process that reused the pid. */
  exe?: string
}

/** What a tool needs to connect. */
export interface HnpRef {
  uri: string
  secret: string
  pid?: number
  /** Contact file it came from, if any. */
  path?: string
}

export function contactPath(pid: number = process.pid): string {
  return join(sessionRoot(), `hnp-${pid}.json`)
}

/** Write (or rewrite) this HNP's contact file atomically: readers never see half a file. */
export function writeContact(c: HnpContact): string {
  const path = contactPath(c.pid)
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  const body: HnpContact = { exe: process.execPath, ...c }
  writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, path)
  return path
}

export function removeContact(pid: number = process.pid): void {
  rmSync(contactPath(pid), { force: true })
}

/** Parse and check a contact file; throws ActionableError naming the file. */
export function readContact(path: string): HnpContact {
  let c: Partial<HnpContact>
  try {
    c = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ActionableError(`cannot read HNP contact file ${path}: ${errorMessage(err)}`)
  }
  const ok =
    typeof c === 'object' && c !== null &&
    Number.isInteger(c.pid) && typeof c.uri === 'string' && typeof c.secret === 'string' &&
    typeof c.started === 'number' && Array.isArray(c.jobs) && typeof c.version === 'string'
  if (!ok) throw new ActionableError(`${path} is not an ompx HNP contact file`)
  return c as HnpContact
}

/** Whether the pid is alive AND still an ompx process (pids get reused after a crash). */
export function isLiveHnp(c: Pick<HnpContact, 'pid' | 'exe'>): boolean {
  if (!pidAlive(c.pid)) return false
  let cmdline: string
  try {
    cmdline = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8')
  } catch {
    return true // no /proc (macOS): the liveness check above is all we have
  }
  if (cmdline.includes('ompx')) return true
  if (!c.exe) return false
  try {
    return realpathSync(readlinkSync(`/proc/${c.pid}/exe`)) === realpathSync(c.exe)
  } catch {
    return false
  }
}

/** Live HNPs of this user, oldest first. Stale files are deleted; unreadable ones skipped. */
export function listContacts(): (HnpContact & { path: string })[] {
  const dir = sessionRoot()
  const out: (HnpContact & { path: string })[] = []
  for (const name of readdirSync(dir)) {
    if (!/^hnp-\d+\.json$/.test(name)) continue
    const path = join(dir, name)
    let c: HnpContact
    try {
      c = readContact(path)
    } catch (err) {
      log.debug(errorMessage(err))
      continue
    }
    if (isLiveHnp(c)) out.push({ ...c, path })
    else {
      log.debug(`removing stale contact file ${path} (pid ${c.pid} is gone)`)
      rmSync(path, { force: true })
    }
  }
  return out.sort((a, b) => a.started - b.started || a.pid - b.pid)
}

function describe(c: HnpContact): string {
  const t = new Date(c.started).toLocaleTimeString()
  return `${c.pid} (started ${t}, jobs ${c.jobs.length ? c.jobs.join(',') : 'none'})`
}

const fromContact = (c: HnpContact, path: string): HnpRef => ({ uri: c.uri, secret: c.secret, pid: c.pid, path })

/**
 * Find the HNP a tool should talk to. `ref` is a pid, a contact file path, or a URI (secret
 * from a matching local contact file, else $OMPX_HNP_SECRET); without it, the only live HNP.
 */
export function resolveHnp(ref?: string | number): HnpRef {
  const s = ref === undefined ? '' : String(ref).trim()
  if (!s) {
    const live = listContacts()
    if (live.length === 1) return fromContact(live[0]!, live[0]!.path)
    if (live.length === 0) throw new ActionableError('no running ompx HNP found (start one with ompx run or ompx hnp)')
    throw new ActionableError(`several HNPs are running: ${live.map(describe).join(', ')}; pass one pid`)
  }
  if (/^\d+$/.test(s)) {
    const pid = Number(s)
    const live = listContacts()
    const hit = live.find((c) => c.pid === pid)
    if (hit) return fromContact(hit, hit.path)
    const others = live.length ? `running: ${live.map(describe).join(', ')}` : 'none is running'
    throw new ActionableError(`process ${pid} is not a running ompx HNP (${others})`)
  }
  if (s.includes('://')) {
    const local = listContacts().find((c) => c.uri === s)
    if (local) return fromContact(local, local.path)
    const env = process.env.OMPX_HNP_SECRET
    if (!env) {
      throw new ActionableError(
        `to reach ${s} give its job secret in OMPX_HNP_SECRET (the "secret" field of the HNP's contact file hnp-<pid>.json), or pass the contact file instead`,
      )
    }
    parseSecret(env) // fail here, with a clear message, rather than as a refused handshake
    return { uri: s, secret: env.trim() }
  }
  let c: HnpContact
  try {
    c = readContact(s)
  } catch (err) {
    if ((err as Error).message.includes('ENOENT')) {
      throw new ActionableError(`"${s}" is neither a pid, a URI (tcp://host:port) nor an HNP contact file`)
    }
    throw err
  }
  parseSecret(c.secret)
  // An explicit file may describe an HNP on another host: let the connection decide.
  return fromContact(c, s)
}
