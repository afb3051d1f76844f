/**
 * What a seq dir holds besides global.json's listing, and the checks verify makes of it before
 * any file is read:
 * - the seq dir and every rank dir are real directories (a symlink is never followed), and a
 *   rank dir holds exactly what global.json lists (plus its ompx-rank.json): an unlisted file or
 *   directory, a symlink, a device, socket or fifo is refused. Only then are the listed files'
 *   sizes and checksums checked, so nothing outside the snapshot is ever opened, and nothing
 *   unlisted reaches a restarting rank;
 * - the ranks' key-value store, `<seq>/kv.json` (a JSON object of base64 values) instead of
 *   inline in global.json: global.json stays small however much the ranks put, and the file is
 *   listed there with its size and checksum like any snapshot file, so verify checks it before a
 *   restart hands it to the new job's kv store.
 */
import { lstat, readFile, readdir } from '../util/fs-promises'
import { join } from 'node:path'
import { ActionableError, errorMessage } from '../errors'
import { StreamingChecksum, type ChecksumAlgo } from './checksum'
import { writeFileAtomic } from './durable'
import { KV_FILE, RANK_META, type SnapshotFileInfo } from './types'

function kind(st: { isSymbolicLink(): boolean; isDirectory(): boolean; isFile(): boolean }): string {
  if (st.isSymbolicLink()) return 'a symlink'
  if (st.isDirectory()) return 'a directory'
  if (st.isFile()) return 'a file'
  return 'a device, socket or fifo'
}

/** Throw `<what>: <name> is missing | is a symlink (...)` unless `dir` is a real directory. */
export async function checkRealDir(what: string, dir: string, name: string): Promise<void> {
  let st
  try {
    st = await lstat(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ActionableError(`${what}: ${name} is missing`)
    throw new ActionableError(`${what}: cannot read ${name}: ${errorMessage(err)}`)
  }
  if (!st.isDirectory()) throw new ActionableError(`${what}: ${name} is ${kind(st)}, not a directory; a snapshot's directories are never followed through links`)
}

/**
 * Check that rank dir `dir` (named `label` in messages, "rank_3") is a real directory holding
 * only `files` (listed in global.json), the directories leading to them and ompx-rank.json.
 * Listed files that are missing are left to the size check, which names them.
 */
export async function checkRankTree(what: string, dir: string, label: string, files: SnapshotFileInfo[]): Promise<void> {
  await checkRealDir(what, dir, label)
  const listed = new Set(files.map((f) => f.path))
  const dirs = new Set<string>()
  for (const p of listed) for (let cut = p.indexOf('/'); cut > 0; cut = p.indexOf('/', cut + 1)) dirs.add(p.slice(0, cut))
  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? join(dir, rel) : dir
    let names: string[]
    try {
      names = (await readdir(abs)).sort()
    } catch (err) {
      throw new ActionableError(`${what}: cannot list ${label}/${rel}: ${errorMessage(err)}`)
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name
      const st = await lstat(join(dir, r))
      const shown = JSON.stringify(`${label}/${r}`).slice(1, -1)
      if (st.isSymbolicLink() || !(st.isDirectory() || st.isFile())) {
        throw new ActionableError(`${what}: ${shown} is ${kind(st)}; a snapshot holds only the regular files its metadata lists`)
      }
      if (st.isDirectory() && dirs.has(r)) await walk(r)
      else if (st.isFile() && (listed.has(r) || r === RANK_META)) continue
      else throw new ActionableError(`${what}: ${shown} (${kind(st)}) is not listed in the snapshot metadata`)
    }
  }
  await walk('')
}

/** Write `kv` durably as `<seqDir>/kv.json`; returns its entry for global.json. */
export async function writeKvFile(seqDir: string, kv: Record<string, string>, algo: ChecksumAlgo): Promise<SnapshotFileInfo> {
  const data = Buffer.from(JSON.stringify(kv))
  const sum = new StreamingChecksum(algo)
  sum.update(data)
  await writeFileAtomic(join(seqDir, KV_FILE), data)
  return { path: KV_FILE, size: data.length, sum: sum.digest() }
}

/** Read a verified kv.json back; `what` names the snapshot and seq in errors. */
export async function readKvFile(seqDir: string, what: string): Promise<Record<string, string>> {
  let value: unknown
  try {
    value = JSON.parse(await readFile(join(seqDir, KV_FILE), 'utf8'))
  } catch (err) {
    throw new ActionableError(`${what}: ${KV_FILE} cannot be read: ${errorMessage(err)}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new ActionableError(`${what}: ${KV_FILE} is not a map of base64 values`)
  }
  return value as Record<string, string>
}
