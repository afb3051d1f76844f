/**
 * Integrity check of snapshot files against their recorded sizes and checksums. Cheap checks
 * first (every file exists with the right size), then the checksums, so a truncated or missing
 * file is reported without reading gigabytes. The first problem found is the error.
 * `checkReceived` does the same for a transfer, mostly from the sums the receiver computed.
 */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { ActionableError } from '../errors'
import type { SnapshotFileInfo } from '../plugins/types'
import { algoOf, checksumFile, parseSum, sameSum } from './checksum'

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
export async function verifyFiles(what: string, targets: VerifyTarget[]): Promise<void> {
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
  for (const t of targets) {
    for (const f of t.files) {
      const found = await checksumFile(join(t.dir, f.path), { algo: algoOf(f.sum) })
      if (found.size !== f.size) {
        throw new ActionableError(`${what}: ${name(t, f)} has the wrong size (${f.size} bytes expected, ${found.size} found)`)
      }
      if (!sameSum(found.sum, f.sum)) {
        throw new ActionableError(`${what}: ${name(t, f)} is corrupt (checksum ${f.sum} expected, ${found.sum} found)`)
      }
    }
  }
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
