/**
 * The few file-system steps that make snapshot writes crash-safe: fsync a directory (so a
 * created or renamed entry survives a crash), and replace a file atomically (temp file, fsync,
 * rename, fsync the directory). A reader then sees the old file or the new one, never a mix.
 */
import { mkdir, open, rename, rm, writeFile } from '../util/fs-promises'
import { basename, dirname, join } from 'node:path'

/** Snapshot data is the job's memory: only its owner may read it. */
export const PRIVATE_DIR_MODE = 0o700
export const PRIVATE_FILE_MODE = 0o600

/** Flush a directory's entries (new files, renames, removals) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** mkdir -p with mode 0700 for every directory it creates. */
export async function mkdirPrivate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
}

/**
 * Replace `path` with `data` atomically and durably. The temp file sits next to the target (same
 * file system, so rename is atomic) and carries our pid, so two writers never share one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `${basename(path)}.tmp.${process.pid}`)
  try {
    await writeFile(tmp, data, { mode: PRIVATE_FILE_MODE })
    const fh = await open(tmp, 'r+')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dirname(path))
}

/** JSON with a trailing newline, so the files read well with cat. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}
