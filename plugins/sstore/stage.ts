/**
 * sstore "stage": for nodes without a shared file system (or a slow one). Ranks write to node-
 * local scratch, `<node dir>/snapshots/<ref>/<seq>/rank_<r>`, and are released as soon as that is
 * sealed; `push` then streams the files to the HNP (orted.file), optionally zstd-compressed per
 * chunk, and removes the local copy. The HNP writes them into the global snapshot directory.
 */
import { rm, rmdir } from '../../src/util/fs-promises'
import { dirname, join } from 'node:path'
import { sendFiles } from '../../src/sstore/file-sender'
import { definePlugin, type SStorePlugin } from '../../src/plugins/types'
import type { SnapshotLocation } from '../../src/sstore/types'

export default definePlugin((host) => {
  const localRoot = (nodeDir: string) => join(nodeDir, 'snapshots')
  const rankDir = (loc: SnapshotLocation) => join(localRoot(loc.nodeDir), loc.ref, String(loc.seq), `rank_${loc.rank}`)
  const plugin: SStorePlugin = {
    kind: 'sstore',
    name: 'stage',
    priority: 10,
    description: 'Ranks write to node-local disk; the daemon then streams the files to the HNP (optionally zstd)',
    params: [
      { key: 'sstore_stage_compress', values: ['none', 'zstd'], default: 'none', description: 'Compress snapshot transfers to the HNP: none or zstd' },
      { key: 'sstore_stage_compress_level', type: 'number', integer: true, min: 1, max: 22, default: '3', description: 'zstd level for sstore_stage_compress=zstd (1 fastest .. 22 smallest)' },
      { key: 'sstore_stage_keep_local', type: 'bool', default: '0', description: 'Keep the node-local copy after it reached the HNP (1) instead of removing it (0)' },
    ],
    direct: false,
    rankDir,

    async push(loc, files, sink) {
      const compress = (host.param('sstore_stage_compress') ?? 'none').trim() || 'none'
      if (compress !== 'none' && compress !== 'zstd') {
        throw new host.ActionableError(`sstore_stage_compress is "${compress}"; use none or zstd`)
      }
      const level = Number(host.param('sstore_stage_compress_level') || 3)
      if (!Number.isInteger(level) || level < 1 || level > 22) {
        throw new host.ActionableError(`sstore_stage_compress_level is "${host.param('sstore_stage_compress_level')}"; use a whole number from 1 to 22`)
      }
      const dir = rankDir(loc)
      await sendFiles(dir, files, sink, { compress, level })
      if (/^(1|true|yes|on)$/i.test(host.param('sstore_stage_keep_local') ?? '')) return
      await rm(dir, { recursive: true, force: true })
      // Drop the seq and ref dirs once empty (other ranks of this node may still be using them).
      for (let d = dirname(dir); d !== localRoot(loc.nodeDir); d = dirname(d)) {
        if (!(await rmdir(d).then(() => true, () => false))) break
      }
    },
  }
  return plugin
})
