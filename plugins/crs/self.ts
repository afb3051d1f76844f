/**
 * crs "self": the application writes its own recovery image. At stage 2 the rank's app
 * coordinator (the ompx/app SDK's onCheckpoint callback, or `ompx shim`'s signal convention)
 * is handed the rank's snapshot directory; a restarted rank starts afresh and reads it back from
 * OMPX_RESTART_DIR. Nothing outside the app is captured, so any language and any platform work.
 */
import { definePlugin } from '../../src/plugins/types'

export default definePlugin((host) => ({
  kind: 'crs',
  name: 'self',
  priority: 10,
  description: 'Application-level checkpoint: the app writes its state (ompx/app SDK or ompx shim)',
  needsApp: true,
  passesPmiFd: true,
  notCheckpointable: () => null,
  launch: async (req) => host.spawnRank(req),
  async capture(req) {
    if (!req.app) {
      throw new host.ActionableError(`rank ${req.rank} has no app coordinator: use the ompx/app SDK or run it under ompx shim`)
    }
    await req.app.capture(req.dir)
    return {}
  },
  // The app is told (OMPX_RESTART, OMPX_RESTART_DIR) and stops once it has answered the release.
  captureEndsRankOnTerm: false,
  restore: async (req) => host.spawnRank(req),
}))
