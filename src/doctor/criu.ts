/**
 * The criu section of `ompx doctor`: everything crs criu needs on this node, each with why not.
 * Order follows what a user fixes first: privileges, a criu binary, `criu check`, the launch
 * tools, then what this kernel + criu can and cannot do (sockets, pre-dump, lazy pages).
 */
import { release } from 'node:os'
import { lookupCriu, type CriuBinary } from '../../plugins/crs/criu/binary'
import { inetSockets, lazyPages, nftablesLock, softDirty } from '../../plugins/crs/criu/features'
import { launchToolsProblem } from '../../plugins/crs/criu/launch'
import { privilegeProblem, privileges } from '../../plugins/crs/criu/privileges'
import { check, type Check, type Section } from './types'

function privilegeCheck(): Check {
  const p = privileges()
  const why = privilegeProblem(p)
  const caps = [p.caps.sysAdmin && 'CAP_SYS_ADMIN', p.caps.checkpointRestore && 'CAP_CHECKPOINT_RESTORE', p.caps.sysPtrace && 'CAP_SYS_PTRACE']
  const have = caps.filter(Boolean).join(', ') || 'no relevant capabilities'
  if (why) return check('privileges', 'fail', why)
  const note = p.caps.sysResource ? '' : ' (no CAP_SYS_RESOURCE: criu logs a harmless RLIMIT_NOFILE error)'
  return check('privileges', 'ok', `root, ${have}${note}`)
}

/** The criu to use and every candidate that was passed over, as checks. */
function binaryChecks(explicit?: string): { criu: CriuBinary | null; checks: Check[] } {
  const { criu, candidates } = lookupCriu(explicit, true)
  const checks: Check[] = []
  for (const c of candidates) {
    if (c.problem === 'not found' && c.from !== 'crs_criu_path' && c.from !== 'OMPX_CRIU') continue
    if (c.problem) checks.push(check('criu candidate', c.problem === 'not found' ? 'fail' : 'warn', `${c.path} (${c.from}): ${c.problem}`))
  }
  if (criu) {
    const from = candidates.find((c) => c.path === criu.path)?.from ?? ''
    checks.unshift(check('criu', 'ok', `${criu.path} (criu ${criu.version}, ${from}): criu check says "Looks good."`))
  } else {
    const hint = explicit ? 'fix crs_criu_path' : 'run scripts/install-criu.sh as root, or set crs_criu_path'
    const why = candidates.filter((c) => c.problem && c.problem !== 'not found').map((c) => `${c.path}: ${c.problem}`)
    checks.unshift(check('criu', 'fail', `no criu that passes \`criu check\`${why.length ? ` (${why.join('; ')})` : ''}; ${hint}`))
  }
  return { criu, checks }
}

export function criuSection(explicit?: string, kernel = release()): Section {
  const checks: Check[] = [privilegeCheck()]
  const tools = launchToolsProblem()
  checks.push(tools ? check('launch tools', 'fail', tools) : check('launch tools', 'ok', 'unshare, setsid and sh found (ranks get their own pid namespace)'))
  if (privilegeProblem()) {
    checks.push(check('criu', 'info', 'not checked: criu cannot run without root'))
    return { title: 'criu (crs criu)', checks }
  }
  const bin = binaryChecks(explicit)
  checks.push(...bin.checks)
  if (bin.criu) {
    const feature = (name: string, f: { ok: boolean; message: string }, bad: 'warn' | 'info') => check(name, f.ok ? 'ok' : bad, f.message)
    checks.push(feature('inet sockets', inetSockets(bin.criu, kernel), 'warn'))
    checks.push(feature('pre-dump', softDirty(bin.criu), 'info'))
    checks.push(feature('lazy pages', lazyPages(bin.criu), 'info'))
    checks.push(feature('network lock', nftablesLock(bin.criu), 'info'))
  }
  return { title: 'criu (crs criu)', checks }
}

/** Null when crs criu can checkpoint here, else the first failing check's detail. */
export function criuVerdict(section: Section): string | null {
  const bad = section.checks.find((c) => c.verdict === 'fail')
  return bad ? bad.detail : null
}
