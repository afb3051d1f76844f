/**
 * crs "none": the default when no checkpoint/restart service is wanted. Jobs run normally; a
 * checkpoint request gets a clear "not checkpointable" answer instead of a half-taken snapshot.
 */
import { definePlugin } from '../../src/plugins/types'

export default definePlugin(() => ({
  kind: 'crs',
  name: 'none',
  priority: 0,
  description: 'No checkpoint/restart: jobs run normally but cannot be checkpointed',
  notCheckpointable: () =>
    "crs 'none' is selected: this job was started without a checkpoint/restart service (use --mca crs self or criu)",
}))
