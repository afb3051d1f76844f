/**
 * crs "none": the default when no checkpoint/restart service is wanted. Jobs run normally; a
 * checkpoint request gets a clear "not checkpointable" answer instead of a half-taken snapshot,
 * and there is never an image to restore.
 */
import { definePlugin } from '../../src/plugins/types'

const WHY = "crs 'none' is selected: this job was started without a checkpoint/restart service (start it with --mca crs self or --mca crs criu)"

export default definePlugin((host) => ({
  kind: 'crs',
  name: 'none',
  priority: 50,
  description: 'No checkpoint/restart: jobs run normally but cannot be checkpointed',
  needsApp: false,
  passesPmiFd: true,
  notCheckpointable: () => WHY,
  launch: async (req) => host.spawnRank(req),
  capture: () => Promise.reject(new host.ActionableError(WHY)),
  captureEndsRankOnTerm: false,
  restore: (req) => Promise.reject(new host.ActionableError(`rank ${req.rank}: ${WHY}`)),
}))
