/** Gather a doctor report. Everything is read-only: no criu dump, no install, no network. */
import { platform, release } from 'node:os'
import type { Registry } from '../plugins/registry'
import { VERSION } from '../version'
import { criuSection } from './criu'
import { crsSection } from './crs'
import { mpiSection } from './mpi'
import { toolsSection } from './tools'
import type { DoctorReport } from './types'

export function doctorReport(registry: Registry, opts: { criuPath?: string } = {}): DoctorReport {
  const criu = criuSection(opts.criuPath)
  return {
    ompx: VERSION,
    platform: `${platform()}-${process.arch}`,
    kernel: release(),
    sections: [crsSection(registry, criu), criu, mpiSection(), toolsSection()],
  }
}
