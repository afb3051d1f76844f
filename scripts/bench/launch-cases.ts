/**
 * What scripts/bench/launch.ts launches: the single-node command of each launcher (ompx, Open MPI's
 * mpirun, MPICH's mpiexec.hydra) and the multi-node case (4 simulated nodes x 16 ranks, one
 * daemon per node). Kept apart from the measuring loop so the commands read as one table.
 */
import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import { type DaemonMatch, scratchFile, which } from './lib'

export interface Launcher {
  key: string
  path: string | null
  missing?: string
  argv(np: number): string[]
  env?: Record<string, string>
  version?: string | null
}

const asRoot = process.getuid?.() === 0

/** An `ompx orted` of the binary `bin`: the kernel's comm is the first 15 bytes of its file name
 *  (so a `--bin /tmp/ompx-main` is found too, not only a file named ompx). */
export const ompxDaemon = (bin: string): DaemonMatch => {
  const comm = basename(bin).slice(0, 15)
  return (c, args) => c === comm && args()[1] === 'orted'
}

// ---------------------------------------------------------------------------------------------
// Multi-node case: 4 simulated nodes x 16 ranks on localhost, one daemon per node.
//  - ompx: hostfile `nK slots=16 launcher=local`; each node gets its own `ompx orted` bound to
//    127.0.1.K.
//  - mpirun / hydra: --host / -hosts 127.0.1.1:16,...,127.0.1.4:16 with their rsh launcher
//    pointed at LOCAL_RSH below instead of ssh: it does on this machine what sshd would do on the
//    node (run the command line through `sh -c`, TMPDIR of its own), so each node gets a real
//    `orted` / `hydra_pmi_proxy`, minus ssh's own cost. Their out-of-band traffic is pinned to `lo`.
//    Hydra starts the proxy of the first host (127.0.1.1) itself, without the agent: it sees that
//    address as local.
export const NODES = 4
export const PER_NODE = 16
// rsh-compatible agent: skip options, take the host, run the rest as sshd would (joined, via
// sh -c), with a /tmp of the node's own: the four orteds of one job otherwise race to create the
// same session directory (/tmp/ompi.<host>.<uid>/jf.<job>) and one fails with EEXIST, about 1 run in 5.
const LOCAL_RSH = `#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host=$1
shift
export TMPDIR="$(dirname "$0")/node-$host"
mkdir -p "$TMPDIR"
exec /bin/sh -c "$*"
`
export interface MultiCase {
  label: string
  run: Record<string, { argv: string[]; env?: Record<string, string>; daemon: DaemonMatch } | null | undefined>
}

export function launchCases({ bin, mpirunStock, multi }: { bin: string; mpirunStock: boolean; multi: boolean }) {
  const launchers: Launcher[] = [
    {
      key: 'ompx',
      path: existsSync(bin) ? bin : null,
      missing: `${bin} not built (bun scripts/build.ts)`,
      argv: (np) => [bin, 'run', '-np', String(np), '--oversubscribe', '--', 'true'],
    },
    {
      key: 'mpirun',
      path: which('mpirun'),
      missing: 'mpirun not installed (Open MPI: scripts/install-peers.sh)',
      argv: (np) => ['mpirun', '--oversubscribe', '-np', String(np), 'true'],
      env: {
        // Open MPI refuses to start as root unless told twice.
        ...(asRoot ? { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' } : {}),
        // Open MPI 4.1 spawns >= 32 local ranks from a thread pool, and that races with ranks that
        // exit at once: about half the launches of 64 x `true` hang forever. Serial spawn does not.
        ...(mpirunStock ? {} : { OMPI_MCA_odls_base_max_threads: '1' }),
      },
    },
    {
      key: 'hydra',
      path: which('mpiexec.hydra'),
      missing: 'mpiexec.hydra not installed (MPICH: scripts/install-peers.sh)',
      // Hydra oversubscribes localhost without being asked.
      argv: (np) => ['mpiexec.hydra', '-n', String(np), 'true'],
    },
  ]

  /** The simulated nodes as each launcher names them (written to the scratch dir once). */
  const simNodes = (() => {
    let made: { np: number; hosts: string; hostfile: string; agent: string } | undefined
    return () =>
      (made ??= {
        np: NODES * PER_NODE,
        hosts: Array.from({ length: NODES }, (_, i) => `127.0.1.${i + 1}:${PER_NODE}`).join(','),
        hostfile: scratchFile('hostfile', Array.from({ length: NODES }, (_, i) => `n${i + 1} slots=${PER_NODE} launcher=local\n`).join('')),
        agent: scratchFile('local-rsh', LOCAL_RSH, 0o755),
      })
  })()
  function multiNodeCases(): MultiCase[] {
    if (!multi) return []
    const { np, hosts, hostfile, agent } = simNodes()
    const by = (key: string) => launchers.find((l) => l.key === key && l.path)
    const ompx = by('ompx')
    const mpirun = by('mpirun')
    const hydra = by('hydra')
    return [
      {
        label: `${NODES}x${PER_NODE}`,
        run: {
          ompx: ompx && {
            argv: [bin, 'run', '-np', String(np), '--hostfile', hostfile, '--', 'true'],
            daemon: ompxDaemon(bin),
          },
          mpirun: mpirun && {
            argv: ['mpirun', '--mca', 'plm_rsh_agent', agent, '--mca', 'oob_tcp_if_include', 'lo', '--host', hosts, '-np', String(np), 'true'],
            env: mpirun.env,
            daemon: (comm) => comm === 'orted',
          },
          hydra: hydra && {
            argv: ['mpiexec.hydra', '-launcher', 'rsh', '-launcher-exec', agent, '-iface', 'lo', '-hosts', hosts, '-n', String(np), 'true'],
            daemon: (comm) => comm === 'hydra_pmi_proxy',
          },
        },
      },
    ]
  }
  return { launchers, simNodes, multiNodeCases }
}
