/**
 * MPI libraries on this machine and whether ompx can serve their ranks: MPICH's library speaks
 * PMI-1/PMI-2, which every ompx node serves (docs/pmi.md); Open MPI's needs PMIx, which ompx
 * does not serve yet (its programs get a warning at launch). Found through the linker cache.
 */
import { check, type Check, type Section } from './types'

const LIBRARIES = [
  { soname: 'libmpich.so.12', name: 'MPICH', served: true, detail: 'speaks PMI-1 (PMI_FD/PMI_PORT) and PMI-2: served by every ompx node' },
  { soname: 'libmpi.so.40', name: 'Open MPI', served: false, detail: 'needs a PMIx server, which ompx does not provide: run Open MPI programs with mpirun, or rebuild them with mpicc.mpich' },
  { soname: 'libpmi2.so.0', name: "Slurm's libpmi2", served: true, detail: 'PMI-2 client: served by every ompx node' },
] as const

/** soname -> path, from `ldconfig -p` (empty when it cannot run). */
function linkerCache(): Map<string, string> {
  const out = new Map<string, string>()
  const ldconfig = Bun.which('ldconfig') ?? (['/sbin/ldconfig', '/usr/sbin/ldconfig'].find((p) => Bun.file(p).size > 0) || null)
  if (!ldconfig) return out
  try {
    const r = Bun.spawnSync([ldconfig, '-p'], { stdout: 'pipe', stderr: 'ignore', timeout: 10_000 })
    for (const line of r.stdout.toString().split('\n')) {
      const m = line.match(/^\s*(\S+) \(.*\) => (\S+)/)
      if (m && !out.has(m[1]!)) out.set(m[1]!, m[2]!)
    }
  } catch {
    // No linker cache: every library is reported missing.
  }
  return out
}

export function mpiSection(): Section {
  const cache = linkerCache()
  const checks: Check[] = LIBRARIES.map((l) => {
    const path = cache.get(l.soname)
    if (!path) return check(l.name, 'info', `${l.soname} not found`)
    return check(l.name, l.served ? 'ok' : 'warn', `${path}: ${l.detail}`)
  })
  return { title: 'MPI libraries (PMI)', checks }
}
