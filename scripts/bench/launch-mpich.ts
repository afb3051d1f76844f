/**
 * The MPICH case of the launch benchmark (scripts/bench/launch.ts): an MPI program that calls
 * only MPI_Init and MPI_Finalize, built with Debian's mpicc.mpich, started by ompx (its nodes
 * serve PMI, docs/pmi.md) and by mpiexec.hydra in the same run: 16 and 64 ranks on one node, and
 * 4 simulated nodes x 16 (the same hostfile and rsh agent as the `true` case). Unlike `true`,
 * every rank here connects to its PMI server, puts its business card, fences and reads its peers'.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { scratchFile, which } from './lib'

const INIT_ONLY = `#include <mpi.h>
int main(int argc, char **argv) { MPI_Init(&argc, &argv); MPI_Finalize(); return 0; }
`

export interface MpichCase {
  label: string
  ompx: string[]
  hydra: string[] | null
}

/** The cases, or why there are none (mpicc.mpich missing, the build failed). */
export function mpichCases(o: { bin: string; hostfile: string; agent: string; hosts: string; np: number }): MpichCase[] | string {
  if (!which('mpicc.mpich')) return 'mpich: n/a, mpicc.mpich not installed (scripts/install-peers.sh)'
  const src = scratchFile('mpi-init.c', INIT_ONLY)
  const prog = join(src, '..', 'mpi-init')
  try {
    execFileSync('mpicc.mpich', ['-O2', '-o', prog, src], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    return `mpich: n/a, mpicc.mpich failed: ${String((err as { stderr?: Buffer }).stderr ?? err).split('\n')[0]}`
  }
  const hydra = which('mpiexec.hydra') ? (args: string[]) => ['mpiexec.hydra', ...args, prog] : () => null
  const one = (np: number): MpichCase => ({
    label: `mpi ${np}`,
    ompx: [o.bin, 'run', '-np', String(np), '--oversubscribe', '--', prog],
    hydra: hydra(['-n', String(np)]),
  })
  return [
    one(16),
    one(64),
    {
      label: 'mpi 4x16',
      ompx: [o.bin, 'run', '-np', String(o.np), '--hostfile', o.hostfile, '--', prog],
      hydra: hydra(['-launcher', 'rsh', '-launcher-exec', o.agent, '-iface', 'lo', '-hosts', o.hosts, '-n', String(o.np)]),
    },
  ]
}
