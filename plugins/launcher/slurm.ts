/**
 * The `slurm` launcher: inside a Slurm allocation, ONE `srun` starts `ompx orted` on all the
 * nodes at once (one task per node), as Open MPI's plm/slurm does. Slurm then owns the daemons:
 * they run in the job's cgroups, are accounted to the job, and die with it.
 *
 * srun starts the same command line everywhere, so a daemon cannot be told its node name in argv;
 * it reads it from SLURMD_NODENAME (`--node-from-env`), which slurmd sets for every task. The
 * secret goes to srun's stdin, which `--input=all` broadcasts to every task; srun's stdin EOF
 * reaches every daemon the same way, so the HNP going away stops them all. Each daemon's address
 * is its node's NodeAddr, looked up once here and passed as `--bind-map` (slurm-addresses.ts).
 * `--kill-on-bad-exit` is on unless the job must outlive a lost node (--enable-recovery).
 */
import type { NodeInfo } from '../../src/runtime/job'
import { ortedArgv, spawnDaemon } from './common'
import { splitWords } from '../../src/util/shell'
import { compressNodelist, slurmNodeNames } from '../../src/runtime/slurm-env'
import { bindMapValue, lookupNodeAddresses } from './slurm-addresses'
import { definePlugin } from '../../src/plugins/types'
import type { DaemonLaunchRequest, DaemonProcess, HostApi } from '../../src/plugins/types'

/** The variable slurmd sets to the node's Slurm name in every task it starts. */
export const NODE_NAME_VAR = 'SLURMD_NODENAME'

export interface SrunOptions {
  /** Path of the ompx binary on the compute nodes. */
  agent: string
  /** Extra srun arguments from launcher_slurm_args (e.g. --external-launcher on Slurm 23.11+). */
  extraArgs: string[]
  /** --kill-on-bad-exit: one failed daemon ends the step (off for fault-tolerant runs). */
  killOnBadExit: boolean
  /** `--bind-map` for the daemons: each node's address (see slurm-addresses.ts). */
  bindMap?: string
}

/** The exact srun command line for starting daemons on `nodes`. */
export function srunArgv(req: Pick<DaemonLaunchRequest, 'hnpUri' | 'ortedArgs'>, nodes: string[], opts: SrunOptions): string[] {
  return [
    'srun',
    `--nodes=${nodes.length}`,
    `--ntasks=${nodes.length}`,
    '--ntasks-per-node=1',
    `--nodelist=${compressNodelist(nodes)}`,
    `--kill-on-bad-exit=${opts.killOnBadExit ? 1 : 0}`,
    // srun passes its own environment (ours + req.env) to the tasks.
    '--export=ALL',
    // Broadcast srun's stdin (the secret line, then EOF when we go) to every task.
    '--input=all',
    // The daemons serve PMI to their ranks themselves; no Slurm MPI plugin for this step.
    '--mpi=none',
    ...opts.extraArgs,
    ...ortedArgv(opts.agent, req, { nodeFromEnv: NODE_NAME_VAR, bindMap: opts.bindMap }),
  ]
}

/** The environment srun runs with: ours, the request's, and no CPU binding for the daemons. */
export function srunEnv(
  req: Pick<DaemonLaunchRequest, 'env'>,
  base: Record<string, string | undefined> = process.env,
): Record<string, string | undefined> {
  // SLURM_CPU_BIND rather than --cpu-bind / --cpu_bind: the option's spelling changed in Slurm 19
  // and the variable works with both (Open MPI's reasoning). A daemon bound to one core would
  // confine every rank it forks to that core.
  return { ...base, ...req.env, SLURM_CPU_BIND: 'none' }
}

type Env = Record<string, string | undefined>
const srunInPath = (env: Env) => () => Bun.which('srun', { PATH: env.PATH ?? '' }) !== null

/** Why this launcher cannot serve `nodes` here, or undefined when it can. */
export function slurmRefusal(nodes: NodeInfo[], env: Env = process.env, hasSrun = srunInPath(env)): string | undefined {
  if (!env.SLURM_JOB_ID) return 'not inside a Slurm allocation (SLURM_JOB_ID is not set); run ompx inside salloc or an sbatch script'
  if (nodes.length === 0) return 'no nodes to start daemons on'
  let inJob: string[]
  try {
    inJob = slurmNodeNames(env) ?? []
  } catch (err) {
    return `cannot read Slurm job ${env.SLURM_JOB_ID}'s nodelist: ${(err as Error).message}`
  }
  if (inJob.length === 0) return `Slurm job ${env.SLURM_JOB_ID} has no SLURM_JOB_NODELIST in this environment`
  const outside = nodes.filter((n) => !inJob.includes(n.name)).map((n) => n.name)
  if (outside.length > 0) return `${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} not in Slurm job ${env.SLURM_JOB_ID} (nodes ${compressNodelist(inJob)})`
  if (!hasSrun()) return 'srun is not in PATH; load the Slurm module'
  return undefined
}

/** Inside a Slurm job, srun available, and every node part of the job's allocation. */
export function slurmAccepts(nodes: NodeInfo[], env: Env = process.env, hasSrun = srunInPath(env)): boolean {
  return slurmRefusal(nodes, env, hasSrun) === undefined
}

/** What launch() takes: killOnBadExit undefined means "decide from the request". */
type LaunchOptions = Omit<SrunOptions, 'killOnBadExit'> & { killOnBadExit?: boolean }

/**
 * Start the daemons. One srun serves all the nodes, so the handles share its pid, exit and output;
 * srun is signalled once every node's handle was killed (the HNP tearing the job down), or at
 * once for SIGKILL. A single daemon is stopped over the wire, not through srun.
 */
export async function launchSlurm(req: DaemonLaunchRequest, opts: LaunchOptions, debug: (msg: string) => void = () => {}): Promise<DaemonProcess[]> {
  const names = req.nodes.map((n) => n.name)
  if (new Set(names).size !== names.length) throw new Error(`slurm launcher: a node is listed twice in ${names.join(',')}`)
  const env = srunEnv(req)
  const path = Bun.which('srun', { PATH: env.PATH ?? '' })
  if (!path) throw new Error('slurm launcher: srun not found in PATH; load the Slurm module or use --mca launcher ssh')
  const bindMap = opts.bindMap ?? bindMapValue(names, await lookupNodeAddresses(names, env, debug))
  const argv = srunArgv(req, names, { ...opts, killOnBadExit: opts.killOnBadExit ?? !req.tolerateNodeLoss, bindMap })
  debug(`daemons through: ${argv.join(' ')}`)
  argv[0] = path
  const srun = spawnDaemon({ node: compressNodelist(names), argv, secret: req.secret, env })
  const released = new Set<string>()
  return names.map((node) => ({
    node,
    pid: srun.pid,
    exited: srun.exited,
    stderrTail: srun.stderrTail,
    kill(signal?: NodeJS.Signals) {
      released.add(node)
      if (released.size === names.length || signal === 'SIGKILL') srun.kill(signal)
    },
  }))
}

function srunOptions(host: Pick<HostApi, 'param' | 'ActionableError'>, execPath: string): LaunchOptions {
  let extraArgs: string[]
  try {
    extraArgs = splitWords(host.param('launcher_slurm_args') ?? '')
  } catch (err) {
    throw new host.ActionableError(`parameter launcher_slurm_args: ${(err as Error).message}`)
  }
  return {
    agent: host.param('launch_agent') || execPath,
    extraArgs,
    killOnBadExit: killOnBadExitParam(host.param('launcher_slurm_kill_on_bad_exit')),
  }
}

/** Empty (the default) decides per job: on, unless the job must survive a node loss. */
function killOnBadExitParam(value: string | undefined): boolean | undefined {
  const v = value?.trim() ?? ''
  return v === '' ? undefined : !/^(0|false|no|off)$/i.test(v)
}

export default definePlugin((host) => ({
  kind: 'launcher',
  name: 'slurm',
  priority: 30,
  description: 'Daemons on the nodes of the current Slurm job, started by one srun',
  params: [
    { key: 'launcher_slurm_args', default: '', description: 'Extra srun arguments for the daemon step (e.g. --external-launcher on Slurm 23.11+)' },
    {
      key: 'launcher_slurm_kill_on_bad_exit',
      type: 'bool',
      default: '',
      description: 'srun --kill-on-bad-exit for the daemon step: one failed daemon ends all (empty: 1, or 0 with --enable-recovery)',
    },
    // launch_agent (the binary's path on the nodes) is read too; the ssh launcher registers it.
  ],
  accepts: (nodes) => slurmAccepts(nodes),
  refusal: (nodes) => slurmRefusal(nodes),
  launch: (req) => launchSlurm(req, srunOptions(host, req.execPath), (m) => host.log.debug(m)),
}))
