/**
 * Integrity check of snapshot files against their recorded sizes and checksums. Cheap checks
 * first (every file exists with the right size), then the checksums, so a truncated or missing
 * file is reported without reading gigabytes. The first problem found is the error. Mode `size`
 * (sstore_base_verify) stops after the cheap checks.
 * `checkReceived` does the same for a transfer, mostly from the sums the receiver computed.
 */
import { lstat } from '../util/fs-promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../errors'
import type { SnapshotFileInfo } from './types'
import { algoOf, checksumFile, parseSum, sameSum, type VerifyMode } from './checksum'

/** Files of one directory to check; `label` prefixes their paths in messages ("rank_3"). */
export interface VerifyTarget {
  dir: string
  label: string
  files: SnapshotFileInfo[]
}

/**
 * Throw ActionableError `<what>: <label>/<path> is missing | has the wrong size (...) | is corrupt
 * (checksum <expected> expected, <found> found)` for the first bad file.
 */
export async function verifyFiles(what: string, targets: VerifyTarget[], mode: VerifyMode = 'checksum'): Promise<void> {
  const name = (t: VerifyTarget, f: SnapshotFileInfo) => (t.label ? `${t.label}/${f.path}` : f.path)
  for (const t of targets) {
    for (const f of t.files) {
      let size: number
      try {
        const st = await lstat(join(t.dir, f.path))
        if (!st.isFile()) throw new ActionableError(`${what}: ${name(t, f)} is not a regular file`)
        size = st.size
      } catch (err) {
        if (err instanceof ActionableError) throw err
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ActionableError(`${what}: ${name(t, f)} is missing`)
        throw new ActionableError(`${what}: cannot read ${name(t, f)}: ${(err as Error).message}`)
      }
      if (size !== f.size) {
        throw new ActionableError(`${what}: ${name(t, f)} has the wrong size (${f.size} bytes expected, ${size} found)`)
      }
    }
  }
  if (mode === 'size') return
  // Checksums of several files at once: one core reads ~4 GB/s of crc32 from the page cache,
  // so a restart of many ranks verifies about cores times faster. The first bad file in
  // listing order is the one reported, whatever finished first.
  const jobs = targets.flatMap((t) => t.files.map((f) => ({ t, f })))
  const results: (string | null)[] = new Array(jobs.length).fill(null)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < jobs.length; i = next++) {
      const { t, f } = jobs[i]!
      const found = await checksumFile(join(t.dir, f.path), { algo: algoOf(f.sum) })
      if (found.size !== f.size) results[i] = `${what}: ${name(t, f)} has the wrong size (${f.size} bytes expected, ${found.size} found)`
      else if (!sameSum(found.sum, f.sum)) results[i] = `${what}: ${name(t, f)} is corrupt (checksum ${f.sum} expected, ${found.sum} found)`
    }
  }
  await Promise.all(Array.from({ length: Math.min(availableParallelism(), jobs.length) }, worker))
  const bad = results.find((r) => r !== null)
  if (bad) throw new ActionableError(bad)
}

/**
 * After a transfer: did every file of the local snapshot arrive whole and unchanged? The receiver
 * checksummed while writing, so this is a comparison, except when the sender recorded another
 * algorithm (then the file is read back once).
 */
export async function checkReceived(rootDir: string, want: SnapshotFileInfo[], got: ReadonlyMap<string, SnapshotFileInfo>): Promise<void> {
  const where = (p: string) => join(rootDir, p)
  const wanted = new Set(want.map((f) => f.path))
  for (const path of got.keys()) {
    if (!wanted.has(path)) throw new ActionableError(`received ${where(path)}, which is not a file of this snapshot`)
  }
  for (const f of want) {
    const g = got.get(f.path)
    if (!g) throw new ActionableError(`${where(f.path)} never arrived (${f.size} bytes expected)`)
    if (g.size !== f.size) throw new ActionableError(`${where(f.path)} arrived with the wrong size (${f.size} bytes expected, ${g.size} received)`)
    let sum = g.sum
    if (parseSum(g.sum)?.algo !== algoOf(f.sum)) sum = (await checksumFile(where(f.path), { algo: algoOf(f.sum) })).sum
    if (!sameSum(sum, f.sum)) throw new ActionableError(`${where(f.path)} arrived corrupt (checksum ${f.sum} expected, ${sum} received)`)
  }
}
