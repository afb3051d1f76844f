/**
 * `ompx run --hnp <ref>`: submit the parsed job to a persistent HNP and behave like a local
 * run: output with the same tags and files, signals forwarded, the job's exit status ours.
 */
import type { RunRequest } from '../args/mpirun'
import { ActionableError } from '../errors'
import { OutputRouter, type OutputOptions } from '../hnp/output/output-router'
import type { Registry } from '../plugins/registry'
import type { SubmitOptions } from '../wire/messages'
import { connectHnp } from './hnp-client'

export async function submitJob(
  registry: Registry,
  ref: string,
  req: RunRequest,
  options: SubmitOptions,
  output: Omit<OutputOptions, 'jobid'>,
): Promise<number> {
  const { channel } = await connectHnp(registry, ref, 'run')
  let jobid = ''
  let router = new OutputRouter({ ...output, jobid: '?' })
  // Jobs the submitted one spawns (MPI_Comm_spawn) send their output here too, each its own lines.
  const spawned = new Map<string, OutputRouter>()
  const routerOf = (id: string) => {
    if (id === jobid) return router
    let r = spawned.get(id)
    if (!r) spawned.set(id, (r = new OutputRouter({ ...output, jobid: id })))
    return r
  }
  let interrupted = 0
  return new Promise<number>((resolve, reject) => {
    channel.on('hnp.submitted', (m) => {
      jobid = m.jobid
      router = new OutputRouter({ ...output, jobid })
    })
    channel.on('orted.output', (m) => routerOf(m.jobid).data(m.rank, m.stream, m.data))
    channel.on('hnp.notice', (m) => (m.text.startsWith(' ===') ? process.stdout.write(m.text) : routerOf(m.jobid).message(m.text)))
    channel.on('error', (m) => reject(new ActionableError(m.message)))
    let finished = false
    channel.on('hnp.job-exit', async (m) => {
      finished = true
      await Promise.all([...spawned.values()].map((r) => r.close()))
      await router.close()
      resolve(m.status)
      channel.close()
    })
    channel.onClose(() => {
      if (!finished) reject(new ActionableError('lost the connection to the HNP; the job was ended'))
    })
    const forward = (signal: NodeJS.Signals) => jobid && channel.send({ t: 'tool.signal', jobid, signal })
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => forward(++interrupted > 1 ? 'SIGKILL' : sig))
    }
    for (const sig of ['SIGUSR1', 'SIGUSR2', 'SIGCONT'] as const) process.on(sig, () => forward(sig))
    channel.send({
      t: 'tool.submit',
      // Ranks get this client's environment, as mpirun forwards its own.
      apps: req.apps.map((a) => ({ np: a.np, argv: a.argv, env: envOf(a.env), cwd: a.cwd })),
      options,
    })
  })
}

function envOf(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  return Object.assign(env, extra)
}
