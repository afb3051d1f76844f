/**
 * The plugins compiled into the binary. Static imports (not a directory scan) so `bun build
 * --compile` bundles them; `file` is only for messages if a built-in ever fails validation.
 * The startup wiring (src/commands/_context.ts) hands this list to the registry.
 */
import crsCriu from './crs/criu'
import crsNone from './crs/none'
import crsSelf from './crs/self'
import launcherLocal from './launcher/local'
import launcherSlurm from './launcher/slurm'
import launcherSsh from './launcher/ssh'
import mapperNode from './mapper/node'
import mapperPpr from './mapper/ppr'
import mapperSeq from './mapper/seq'
import mapperSlot from './mapper/slot'
import sstoreCentral from './sstore/central'
import sstoreStage from './sstore/stage'
import transportTcp from './transport/tcp'
import transportUnix from './transport/unix'
import type { BuiltinPlugin } from '../src/plugins/types'

export const BUILTIN_PLUGINS: BuiltinPlugin[] = [
  { file: 'plugins/crs/none.ts', factory: crsNone },
  { file: 'plugins/crs/self.ts', factory: crsSelf },
  { file: 'plugins/crs/criu/index.ts', factory: crsCriu },
  { file: 'plugins/mapper/slot.ts', factory: mapperSlot },
  { file: 'plugins/mapper/node.ts', factory: mapperNode },
  { file: 'plugins/mapper/ppr.ts', factory: mapperPpr },
  { file: 'plugins/mapper/seq.ts', factory: mapperSeq },
  { file: 'plugins/launcher/local.ts', factory: launcherLocal },
  { file: 'plugins/launcher/ssh.ts', factory: launcherSsh },
  { file: 'plugins/launcher/slurm.ts', factory: launcherSlurm },
  { file: 'plugins/transport/tcp.ts', factory: transportTcp },
  { file: 'plugins/transport/unix.ts', factory: transportUnix },
  { file: 'plugins/sstore/central.ts', factory: sstoreCentral },
  { file: 'plugins/sstore/stage.ts', factory: sstoreStage },
]
