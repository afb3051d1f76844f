/**
 * The crs_criu_* parameters: declared once (the plugin lists them in its `params`, so `ompx info
 * --param crs` shows them) and read into CriuOptions for dump and restore.
 */
import type { ParamDef } from '../../../src/params/types'
import { splitWords } from '../../../src/util/shell'
import { captureSpecProblem, parseCaptureSpec, type CaptureSpec } from './files-spec'
import { DEFAULT_LOG_LEVEL, flag, type CriuOptions } from './options'

export const CRIU_PARAMS: ParamDef[] = [
  {
    key: 'crs_criu_path',
    description: 'The criu to run; empty = search .cache/criu next to ompx, ~/.ompx/criu and PATH for one that passes `criu check`',
    default: '',
  },
  {
    key: 'crs_criu_tcp_established',
    description: 'Checkpoint established TCP connections (criu --tcp-established; needs criu >= 4.2 on Linux >= 6.16)',
    default: 'false',
    type: 'bool',
  },
  {
    key: 'crs_criu_ext_unix_sk',
    description: 'Allow unix datagram sockets whose peer is outside the rank (criu --ext-unix-sk)',
    default: 'false',
    type: 'bool',
  },
  {
    key: 'crs_criu_shell_job',
    description: "Allow a rank whose session or tty is outside it (criu --shell-job); not needed for ompx's own launch",
    default: 'false',
    type: 'bool',
  },
  {
    key: 'crs_criu_private_mounts',
    description: 'Give each rank its own mount namespace with a /proc of its pid namespace and a tmpfs /dev/shm saved in the snapshot (0 = the host\'s /proc and /dev/shm)',
    default: 'true',
    type: 'bool',
  },
  {
    key: 'crs_criu_extra_args',
    description: 'More criu arguments for dump and restore, e.g. "--file-locks"',
    default: '',
  },
  {
    key: 'crs_criu_log_level',
    description: 'criu log level 0-4 for dump.log/restore.log, kept next to the images',
    default: String(DEFAULT_LOG_LEVEL),
    type: 'number',
    integer: true,
    min: 0,
    max: 4,
  },
  {
    key: 'crs_criu_capture_files',
    description:
      'Files copied into each snapshot and put back on restart: comma-separated globs (absolute, or relative to the rank\'s working directory) and/or "open" (every regular file the rank holds open for writing or maps shared); empty = none, a restart warns about changed files',
    default: '',
    check: captureSpecProblem,
  },
]

export interface CriuParams extends CriuOptions {
  /** crs_criu_path, or undefined to search. */
  path?: string
  /** crs_criu_capture_files: which files a capture copies into the snapshot. */
  captureFiles: CaptureSpec
  /** crs_criu_private_mounts: launch ranks with their own /proc and /dev/shm (mounts.ts). */
  privateMounts: boolean
}

/** Read the parameters through a lookup such as HostApi.param. Throws on a bad log level, quoting or file list. */
export function criuParams(param: (key: string) => string | undefined): CriuParams {
  const level = param('crs_criu_log_level')
  if (level?.trim() && !/^[0-4]$/.test(level.trim())) throw new Error(`crs_criu_log_level must be 0-4, got "${level}"`)
  return {
    path: param('crs_criu_path')?.trim() || undefined,
    tcpEstablished: flag(param('crs_criu_tcp_established')),
    extUnixSk: flag(param('crs_criu_ext_unix_sk')),
    shellJob: flag(param('crs_criu_shell_job')),
    privateMounts: !/^(0|false|no|off)$/i.test(param('crs_criu_private_mounts')?.trim() ?? ''),
    extraArgs: splitWords(param('crs_criu_extra_args') ?? ''),
    logLevel: level?.trim() ? Number(level) : DEFAULT_LOG_LEVEL,
    captureFiles: parseCaptureSpec(param('crs_criu_capture_files')),
  }
}
