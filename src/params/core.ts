/**
 * Parameters the core itself reads. The five plugin-selection keys are exactly the kind names,
 * so `--mca crs self` selects crs "self" (empty = pick by priority).
 */
import type { Params } from './params'
import { MAX_COUNT, MAX_SECONDS } from './limits'
import type { ParamDef } from './types'

/**
 * The plugin kinds (Open MPI's MCA frameworks). Declared here, below the plugin layer, because
 * the core's selection parameters carry their names; src/plugins/types.ts builds on them.
 */
export const PLUGIN_KINDS = ['crs', 'mapper', 'transport', 'launcher', 'sstore'] as const
export type PluginKind = (typeof PLUGIN_KINDS)[number]

const selectionHelp: Record<PluginKind, string> = {
  mapper: 'Mapper plugin placing ranks on nodes (empty: the one --map-by names, else highest priority)',
  crs: 'Checkpoint/restart service plugin (empty: highest priority)',
  launcher: 'Launcher plugin starting the node daemons (empty: highest priority that accepts the nodes)',
  transport: 'Transport plugin for runtime connections (empty: highest priority)',
  sstore: 'Snapshot store plugin (empty: highest priority)',
}

export const CORE_PARAMS: ParamDef[] = [
  ...PLUGIN_KINDS.map((kind): ParamDef => ({ key: kind, default: '', description: selectionHelp[kind] })),
  {
    key: 'errmgr_continue',
    type: 'bool',
    default: '0',
    description: 'When a rank fails, let the other ranks run on (1) instead of aborting the job (0)',
  },
  {
    key: 'kill_grace',
    type: 'number',
    min: 0,
    max: MAX_SECONDS,
    default: '5',
    description: 'Seconds between SIGTERM and SIGKILL when aborting a job',
  },
  {
    // Open MPI's name, so existing mca-params.conf files and OMPI-style scripts keep working.
    key: 'rmaps_base_mapping_policy',
    default: '',
    description: 'Default for --map-by when the command line has none (same syntax, e.g. node or ppr:2:node)',
  },
  {
    key: 'heartbeat_interval',
    type: 'number',
    above: 0,
    max: 3600,
    default: '1',
    description: 'Seconds between HNP pings to each node daemon',
  },
  {
    key: 'heartbeat_timeout',
    type: 'number',
    above: 0,
    max: MAX_SECONDS,
    default: '10',
    description: 'A daemon silent this many seconds is declared dead and its job ends',
  },
  {
    key: 'daemon_start_timeout',
    type: 'number',
    above: 0,
    max: MAX_SECONDS,
    default: '60',
    description: 'Seconds to wait for every node daemon to register before giving up',
  },
  {
    key: 'hnp_address',
    default: '',
    description: 'Address the HNP listens on for daemons and tools (default 127.0.0.1 when every node is on this machine)',
  },
  {
    key: 'sstore_base_global_snapshot_dir',
    default: '',
    description: 'Directory of global snapshots on the HNP (empty: ~/.ompx/snapshots; created 0700)',
  },
  {
    key: 'sstore_base_keep',
    type: 'number',
    integer: true,
    min: 0,
    max: MAX_COUNT,
    default: '0',
    description: 'Keep only the newest N finished checkpoints of a job, deleting older ones after each commit (0: keep all)',
  },
  {
    key: 'sstore_base_checksum',
    values: ['crc32', 'sha256'],
    default: 'crc32',
    description: 'Checksum of snapshot files: crc32 (fast, catches corruption) or sha256 (also tampering)',
  },
  {
    key: 'sstore_base_verify',
    values: ['checksum', 'size'],
    default: 'checksum',
    description: 'What a restart checks of a snapshot before using it: checksum (every file read and compared) or size (sizes only: faster, trusts the disk)',
  },
  {
    key: 'snapc_base_timeout',
    type: 'number',
    above: 0,
    max: MAX_SECONDS,
    default: '300',
    description: 'Seconds a checkpoint may take; one not finished by then is abandoned (older snapshots stay intact)',
  },
  {
    key: 'snapc_checkpoint_on_signal',
    values: ['USR1', 'USR2', 'SIGUSR1', 'SIGUSR2'],
    default: '',
    description: 'Take a checkpoint when ompx run or a node daemon receives this signal (e.g. Slurm --signal=USR1@120 before the time limit); empty: the signal goes to the ranks',
  },
  {
    key: 'snapc_checkpoint_on_signal_then',
    values: ['term', 'continue'],
    default: 'term',
    description: 'After a checkpoint on snapc_checkpoint_on_signal: term (end the job, exit status 75, resume with ompx restart) or continue',
  },
  {
    key: 'snapc_kv_max_bytes',
    type: 'number',
    integer: true,
    above: 0,
    default: '67108864',
    description: "Most bytes (keys plus values) a job's kv store may hold; a put past it fails (the store is saved with every checkpoint)",
  },
  {
    key: 'pmi_mode',
    values: ['fd', 'port'],
    default: 'fd',
    description: "How MPI ranks reach their node's PMI server: fd (PMI_FD, an inherited socketpair) or port (PMI_PORT and PMI_ID, TCP on the node's address)",
  },
  {
    key: 'plugin_path',
    default: '',
    description: 'Extra plugin directories, colon-separated (searched after --plugin-dir and OMPX_PLUGIN_PATH)',
  },
]

export type CheckpointSignal = 'SIGUSR1' | 'SIGUSR2'

/** The signal snapc_checkpoint_on_signal names (the HNP and every daemon act on it), or undefined. */
export function checkpointSignal(params: Pick<Params, 'get'>): CheckpointSignal | undefined {
  const v = params.get('snapc_checkpoint_on_signal')?.trim()
  if (!v) return undefined
  return (v.startsWith('SIG') ? v : `SIG${v}`) as CheckpointSignal
}

export function registerCoreParams(params: Params): void {
  for (const def of CORE_PARAMS) params.register({ ...def, owner: 'core' })
}

/**
 * Check every registered parameter, the core's and the loaded plugins' own, once at start-up
 * (type, range, allowed values), so a bad value fails before any work starts.
 */
export function checkTypedParams(params: Params): void {
  // list() sorts with localeCompare, whose collator costs ms at every start; only when a value is
  // bad does the order matter (the error names the first bad key in list order, as it always did).
  try {
    for (const key of params.keys()) params.check(key)
  } catch {
    for (const { def } of params.list()) params.check(def.key)
  }
}
