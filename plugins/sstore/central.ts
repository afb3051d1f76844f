/**
 * sstore "central" (default): the global snapshot directory is on a file system every node
 * shares (or there is only one node). Each rank's CRS writes straight into its final place,
 * `<global dir>/<ref>/<seq>/rank_<r>`, where sealing already checksummed and fsynced it, so
 * there is nothing to move: the cheapest store when the shared file system is fast.
 */
import { join } from 'node:path'
import { definePlugin } from '../../src/plugins/types'

export default definePlugin(() => ({
  kind: 'sstore',
  name: 'central',
  priority: 20,
  description: 'Ranks write their snapshots directly into the global snapshot directory (shared file system)',
  direct: true,
  rankDir: (loc) => join(loc.globalDir, loc.ref, String(loc.seq), `rank_${loc.rank}`),
  // The files are in place and durable once sealRankDir has run: pushing is a no-op.
  push: () => Promise.resolve(),
}))
