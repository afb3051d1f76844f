/**
 * Whether this process may checkpoint at all. criu needs root; with only CAP_CHECKPOINT_RESTORE
 * (Linux >= 5.9) it can run with --unprivileged, which ompx does not use (it cannot restore pid
 * namespaces that way). Read from /proc/self/status so that no criu run is needed to say why.
 */
import { readFileSync } from 'node:fs'

/** Capability bit numbers (linux/capability.h). */
const CAP = { SYS_PTRACE: 19, SYS_ADMIN: 21, SYS_RESOURCE: 24, CHECKPOINT_RESTORE: 40 } as const

export interface Privileges {
  uid: number
  root: boolean
  /** Effective capabilities that matter to criu, by name. */
  caps: { sysAdmin: boolean; sysPtrace: boolean; sysResource: boolean; checkpointRestore: boolean }
}

function effectiveCaps(): bigint {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s*([0-9a-f]+)/m)
    return m ? BigInt(`0x${m[1]}`) : 0n
  } catch {
    return 0n
  }
}

export function privileges(): Privileges {
  const uid = process.getuid?.() ?? -1
  const eff = effectiveCaps()
  const has = (bit: number) => (eff & (1n << BigInt(bit))) !== 0n
  return {
    uid,
    root: uid === 0,
    caps: {
      sysAdmin: has(CAP.SYS_ADMIN),
      sysPtrace: has(CAP.SYS_PTRACE),
      sysResource: has(CAP.SYS_RESOURCE),
      checkpointRestore: has(CAP.CHECKPOINT_RESTORE),
    },
  }
}

/**
 * Null when criu can work with these privileges, else why not (one line). Root without
 * CAP_SYS_ADMIN (some containers) cannot dump either.
 */
export function privilegeProblem(p: Privileges = privileges()): string | null {
  if (!p.root) {
    const cr = p.caps.checkpointRestore ? 'has CAP_CHECKPOINT_RESTORE, but ' : 'no CAP_CHECKPOINT_RESTORE, and '
    return `not root (uid ${p.uid}): ${cr}crs criu needs root to dump and restore pid namespaces`
  }
  if (!p.caps.sysAdmin) return 'root without CAP_SYS_ADMIN (a restricted container?): criu cannot dump or restore here'
  return null
}
