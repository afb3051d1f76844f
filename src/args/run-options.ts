/**
 * `ompx run`'s option table (mpirun spellings). Options marked `perApp` may also be given after
 * a ` : ` for the next app context of an MPMD job; all others apply to the whole job and belong
 * before the first program.
 */
import type { OptionSpec, OptionValues } from './scan'
import { runtimeOptions } from './shared'

export const perAppOptions = [
  { name: 'np', aliases: ['n', 'c'], arity: 1, valueHint: 'N', description: 'Number of ranks to start (default: one per slot)' },
  { name: 'x', arity: 1, multiple: true, valueHint: 'VAR[=value]', description: 'Export VAR (its value here, or the given one) to the ranks (repeatable)' },
  { name: 'wdir', aliases: ['wd'], arity: 1, valueHint: 'dir', description: 'Working directory of the ranks (default: the current one)' },
] as const satisfies readonly OptionSpec[]

export const placementOptions = [
  { name: 'host', aliases: ['H'], arity: 1, multiple: true, valueHint: 'h1[:slots],h2', description: 'Hosts to run on, with optional slot counts (repeatable)' },
  { name: 'hostfile', aliases: ['machinefile'], arity: 1, valueHint: 'file', description: 'Hostfile: one "name slots=N max_slots=M" per line, # comments' },
  { name: 'map-by', arity: 1, valueHint: 'slot|node|ppr:N:node|seq[:OVERSUBSCRIBE]', description: 'How ranks are placed on the hosts (default: slot)' },
  { name: 'oversubscribe', description: 'Allow more ranks on a node than it has slots' },
] as const satisfies readonly OptionSpec[]

export const ioOptions = [
  { name: 'stdin', arity: 1, valueHint: 'rank|all|none', description: 'Which rank reads our stdin: a rank number, all, or none (default: 0)' },
  { name: 'tag-output', description: 'Prefix every output line with [jobid,rank]<stdout>: or <stderr>:' },
  { name: 'timestamp-output', description: 'Prefix every output line with the time it was received' },
  { name: 'output-filename', arity: 1, valueHint: 'F', description: "Write each rank's stdout and stderr to F.<rank> instead of the terminal" },
  { name: 'merge-stderr-to-stdout', description: "Send the ranks' stderr to our stdout" },
] as const satisfies readonly OptionSpec[]

export const controlOptions = [
  { name: 'timeout', arity: 1, valueHint: 'seconds', description: 'Kill the job after this many seconds and exit with status 110' },
  { name: 'display-map', description: 'Print the rank-to-node map before launching' },
] as const satisfies readonly OptionSpec[]

export const launchOptions = [
  { name: 'launcher', arity: 1, valueHint: 'local|ssh|slurm', description: 'How to start node daemons (default: slurm in an allocation, local for this machine, else ssh)' },
  { name: 'launch-agent', arity: 1, valueHint: 'path', description: 'Path of the ompx binary on remote nodes (ssh launcher)' },
  { name: 'preload-binary', description: 'Copy the ompx binary to remote nodes before starting daemons (ssh launcher)' },
  { name: 'hnp', arity: 1, valueHint: 'pid|uri|file', description: 'Submit the job to a running ompx hnp instead of starting one' },
  { name: 'quiet', aliases: ['q'], description: 'Suppress ompx messages other than errors' },
] as const satisfies readonly OptionSpec[]

export const crOptions = [
  { name: 'ckpt-interval', arity: 1, valueHint: 'time', description: 'Take a checkpoint every interval (30s, 5m, 1h; needs --mca crs self or criu)' },
  { name: 'keep', arity: 1, valueHint: 'N', description: 'Keep only the newest N snapshots of the job (sstore_base_keep)' },
  { name: 'enable-recovery', description: 'When a rank or node dies, restart the job from its last snapshot' },
  { name: 'max-restarts', arity: 1, valueHint: 'N', description: 'Give up recovering after N restarts (default 3)' },
  { name: 'recovery-delay', arity: 1, valueHint: 'seconds', description: 'Wait this long before restarting a failed job (default 1)' },
] as const satisfies readonly OptionSpec[]

export const jobOptions = [...placementOptions, ...ioOptions, ...controlOptions, ...crOptions, ...launchOptions, ...runtimeOptions] as const satisfies readonly OptionSpec[]

export const runOptions = [...perAppOptions, ...jobOptions] as const satisfies readonly OptionSpec[]

/** Everything `ompx run` accepts, typed: `opts['map-by']` is a string, `opts.host` a string[], `opts.mca` [k, v][]. */
export type RunOptionValues = OptionValues<typeof runOptions>
/** What an app context after a ` : ` accepts. */
export type PerAppOptionValues = OptionValues<typeof perAppOptions>
