/**
 * Which MPI library a program is linked with, and which process-manager interface it speaks,
 * from the names in its dynamic section (DT_NEEDED). Cheap on purpose: it reads the start of the
 * file, where an ELF keeps .dynstr, and looks for the libraries' sonames. Used to warn at launch
 * about programs whose MPI finds no PMI server here (Open MPI needs PMIx), and by `ompx doctor`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

interface MpiLibrary {
  soname: string
  /** The MPI it belongs to. */
  mpi: 'MPICH' | 'Open MPI'
  /** The interface its library speaks to a process manager. */
  pmi: 'PMI-1/PMI-2' | 'PMIx'
}

const KNOWN: MpiLibrary[] = [
  { soname: 'libmpi.so.40', mpi: 'Open MPI', pmi: 'PMIx' },
  { soname: 'libmpich.so.12', mpi: 'MPICH', pmi: 'PMI-1/PMI-2' },
  { soname: 'libmpi.so.12', mpi: 'MPICH', pmi: 'PMI-1/PMI-2' },
]

/** The first 4 MiB hold the dynamic string table of any program we would launch. */
const HEAD_BYTES = 4 * 1024 * 1024

function mpiLibraryOf(path: string): MpiLibrary | null {
  let head: Buffer
  try {
    const fd = openSync(path, 'r')
    try {
      // Every launch pays this: no zero-filled 4 MiB for a 40 KB program.
      head = Buffer.allocUnsafe(Math.min(fstatSync(fd).size, HEAD_BYTES))
      head = head.subarray(0, readSync(fd, head, 0, head.length, 0))
    } finally {
      closeSync(fd)
    }
  } catch {
    return null
  }
  if (head.length < 4 || head.readUInt32BE(0) !== 0x7f454c46) return null // not an ELF
  // A soname in .dynstr is NUL-terminated on both sides.
  return KNOWN.find((l) => head.includes(`\0${l.soname}\0`)) ?? null
}

/** One line for a program whose MPI speaks no interface ompx serves, or null. */
export function foreignMpiWarning(program: string, path: string): string | null {
  const lib = mpiLibraryOf(path)
  if (!lib || lib.pmi !== 'PMIx') return null
  return `warning: ${program} is linked with ${lib.mpi}'s ${lib.soname}, which needs a PMIx server; ompx serves PMI-1/PMI-2 (MPICH) only, so each rank would run as a singleton of size 1: build it with mpicc.mpich, or run it with Open MPI's mpirun`
}
