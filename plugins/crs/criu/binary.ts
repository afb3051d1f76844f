/**
 * Which criu to run. A criu that exists is not enough: Debian 12's 3.17 fails `criu check` on
 * recent kernels, so each candidate must pass `criu check` ("Looks good."). Candidates, first
 * passing one wins:
 *   1. crs_criu_path (when set it is the only candidate: an explicit choice must not be
 *      silently replaced by another criu)
 *   2. $OMPX_CRIU (as scripts/install-criu.sh)
 *   3. <dir of the ompx binary>/../.cache/criu/bin/criu   (dist/ompx in a checkout)
 *   4. <repo of these sources>/.cache/criu/bin/criu        (bun src/main.ts)
 *   5. ~/.ompx/criu/bin/criu                              (OMPX_CRIU_CACHE=~/.ompx/criu scripts/install-criu.sh)
 *   6. criu on PATH, then /usr/local/sbin, /usr/sbin, /sbin
 * `criu check` costs about 50 ms: results are cached per process, and a pass across processes
 * (check-cache.ts).
 */
import { accessSync, constants, existsSync, realpathSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { cachedPass, rememberPass } from './check-cache'
import { causeLine, CriuError } from './log'
import { privilegeProblem } from './privileges'

export interface CriuBinary {
  /** What to exec (the install script's wrapper, or a real criu). */
  path: string
  /** "4.1.1" */
  version: string
}

export interface CriuCheck {
  ok: boolean
  exitCode: number | null
  /** stdout + stderr of `criu check`, trimmed. */
  output: string
}

export interface Candidate {
  path: string
  /** Where the candidate comes from: "crs_criu_path", "OMPX_CRIU", "PATH", ... */
  from: string
  /** Null when it passed; otherwise why it was not used. */
  problem: string | null
  version?: string
}

const TIMEOUT_MS = 60_000

/** Run criu synchronously: criu is only looked up once per process and callers are synchronous (notCheckpointable). */
function run(path: string, args: string[]): { code: number | null; out: string } {
  try {
    const r = Bun.spawnSync([path, ...args], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', timeout: TIMEOUT_MS })
    return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() }
  } catch (e) {
    return { code: null, out: (e as Error).message }
  }
}

const versions = new Map<string, string | null>()
/** `criu --version` -> "4.1.1", or null when it does not run. */
export function criuVersion(path: string): string | null {
  if (!versions.has(path)) {
    const r = run(path, ['--version'])
    versions.set(path, r.code === 0 ? (r.out.match(/Version:\s*(\S+)/)?.[1] ?? null) : null)
  }
  return versions.get(path)!
}

const checks = new Map<string, CriuCheck>()
/** `criu check`, cached per process. */
export function criuCheck(path: string): CriuCheck {
  let c = checks.get(path)
  if (!c) {
    const r = run(path, ['check'])
    c = { ok: r.code === 0 && /Looks good/.test(r.out), exitCode: r.code, output: r.out }
    checks.set(path, c)
  }
  return c
}

/** The candidate list, in order, without duplicates (same real path). */
export function criuCandidates(explicit?: string, env: Record<string, string | undefined> = process.env): { path: string; from: string }[] {
  if (explicit) return [{ path: resolveCommand(explicit), from: 'crs_criu_path' }]
  const list: { path: string; from: string }[] = []
  if (env.OMPX_CRIU) list.push({ path: resolveCommand(env.OMPX_CRIU), from: 'OMPX_CRIU' })
  list.push({ path: resolve(dirname(process.execPath), '..', '.cache/criu/bin/criu'), from: 'next to the ompx binary' })
  list.push({ path: resolve(import.meta.dir, '..', '..', '..', '.cache/criu/bin/criu'), from: 'next to the ompx sources' })
  list.push({ path: join(env.HOME || homedir(), '.ompx/criu/bin/criu'), from: '~/.ompx' })
  const onPath = Bun.which('criu', { PATH: env.PATH ?? '' })
  if (onPath) list.push({ path: onPath, from: 'PATH' })
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) list.push({ path: `${d}/criu`, from: d })
  const seen = new Set<string>()
  return list.filter((c) => {
    let key = c.path
    try {
      key = realpathSync(c.path)
    } catch {}
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function resolveCommand(p: string): string {
  return p.includes('/') ? resolve(p) : (Bun.which(p) ?? p)
}

/** Evaluate one candidate: runs, has a version, passes `criu check`. */
export function examine(path: string, from: string, fresh = false): Candidate {
  if (!existsSync(path)) return { path, from, problem: 'not found' }
  try {
    accessSync(path, constants.X_OK)
  } catch {
    return { path, from, problem: 'not executable' }
  }
  const known = fresh ? null : cachedPass(path)
  if (known) return { path, from, version: known, problem: null }
  const version = criuVersion(path)
  if (!version) return { path, from, problem: '`criu --version` fails' }
  const check = criuCheck(path)
  if (!check.ok) {
    const why = causeLine(check.output) ?? (check.output.split('\n').pop() || `exit ${check.exitCode}`)
    return { path, from, version, problem: `criu ${version}: \`criu check\` fails: ${why}` }
  }
  rememberPass(path, version)
  return { path, from, version, problem: null }
}

/**
 * Every candidate with its verdict, and the one to use (null when none passes). `fresh` runs
 * `criu check` even when a pass is remembered (ompx doctor shows what criu says now).
 */
export function lookupCriu(explicit?: string, fresh = false): { criu: CriuBinary | null; candidates: Candidate[] } {
  const candidates: Candidate[] = []
  for (const c of criuCandidates(explicit)) {
    const r = examine(c.path, c.from, fresh)
    candidates.push(r)
    if (!r.problem) return { criu: { path: r.path, version: r.version! }, candidates }
  }
  return { criu: null, candidates }
}

const found = new Map<string, CriuBinary>()
/**
 * The criu to use, or a CriuError naming every candidate tried and why it was not used, e.g.
 * "no working criu: /usr/sbin/criu (criu 3.17.1: `criu check` fails: vdso: ...); PATH: ... ;
 * run scripts/install-criu.sh as root or set crs_criu_path".
 */
export function findCriu(explicit?: string): CriuBinary {
  const key = explicit ?? ''
  const hit = found.get(key)
  if (hit) return hit
  const priv = privilegeProblem()
  if (priv) throw new CriuError(`crs criu cannot work here: ${priv}`, null, priv, null)
  const { criu, candidates } = lookupCriu(explicit)
  if (criu) {
    found.set(key, criu)
    return criu
  }
  const tried = candidates
    .filter((c) => c.problem !== 'not found' || c.from === 'crs_criu_path' || c.from === 'OMPX_CRIU')
    .map((c) => `${c.path} (${c.problem})`)
  const hint = explicit ? 'fix crs_criu_path or unset it' : 'run scripts/install-criu.sh as root, or set crs_criu_path'
  const what = tried.length ? tried.join('; ') : 'no criu found in .cache/criu, ~/.ompx/criu or PATH'
  throw new CriuError(`no working criu: ${what}; ${hint}`, null, null, null)
}
