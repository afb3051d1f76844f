/**
 * `ompx shim`: the app coordinator of one rank, for programs that cannot link anything. It
 * speaks the protocol of docs/app-protocol.md for the program and turns a capture into the file
 * convention of docs/shim.md (signal, then wait for $OMPX_CKPT_DIR/done). It never returns: it
 * exits the way the program did (code or signal), or 0 after a checkpoint with --term.
 *
 * Kept light on purpose (it runs next to every rank): no logger, no plugin registry.
 */
import { AppClient } from '../app/client'
import { ActionableError, errorMessage } from '../errors'
import { Program } from './program'
import { exitLike, forwardSignals } from './signals'
import { WorkDir } from './work-dir'
import { writeStderr } from '../tty'

export interface ShimOptions {
  argv: string[]
  signal: NodeJS.Signals
  timeoutMs: number
}

/** How long the shim waits for FIN's answer once the program is gone. */
const FIN_WAIT_MS = 10_000

/** Set once RELEASE TERM arrived: the program's end is then ours, not a failure to report. */
let terminating = false

const warn = (text: string) => writeStderr(`ompx shim: warning: ${text}\n`)

export async function runShim(opts: ShimOptions): Promise<never> {
  process.title = 'ompx shim'
  const env = { ...process.env }
  const work = WorkDir.create(env)
  process.on('exit', () => work.remove())
  let program: Program | null = null
  forwardSignals(() => (program?.running ? program.pid : null))

  const client = env.OMPX_COORD_SOCK ? coordinator(opts, work, () => program) : null
  if (!client) warn('not started by ompx (OMPX_COORD_SOCK is unset): running the program without checkpoint support')
  if (client) {
    try {
      await client.connect()
    } catch (err) {
      throw new ActionableError(`cannot reach the app coordinator: ${errorMessage(err).replace(/^ompx\/app: init: /, '')}`)
    }
  }

  program = new Program(opts.argv, programEnv(env, work, opts.signal, client))
  const started = program
  if (client) {
    // The INIT barrier waits for every rank; the program computes meanwhile.
    client.init().catch((err) => warn(`${errorMessage(err)}; this rank cannot be checkpointed`))
  }
  const status = await started.exited
  if (terminating) return await new Promise<never>(() => {}) // RELEASE TERM exits for us
  if (client) {
    await Promise.race([client.finalize().catch(() => {}), Bun.sleep(FIN_WAIT_MS)])
  }
  return exitLike(status.code, status.signal)
}

function coordinator(opts: ShimOptions, work: WorkDir, program: () => Program | null): AppClient {
  const client = new AppClient({ exit: (code) => process.exit(code) })
  client.onRestart((dir) => work.restoreFrom(dir))
  client.onCheckpoint(async (dir) => {
    const p = program()
    if (!p) throw new Error('the program has not started yet')
    await p.checkpoint(work, opts.signal, opts.timeoutMs)
    await work.saveTo(dir)
  })
  client.onTerminate(async () => {
    terminating = true
    await program()?.terminate(opts.timeoutMs)
  })
  return client
}

function programEnv(env: Record<string, string | undefined>, work: WorkDir, sig: NodeJS.Signals, client: AppClient | null): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v
  out.OMPX_CKPT_DIR = work.path
  out.OMPX_CKPT_SIGNAL = sig.replace(/^SIG/, '')
  if (client) {
    // The shim is this rank's coordinator; the program must not try to be a second one.
    delete out.OMPX_COORD_SOCK
    delete out.OMPX_COORD_TOKEN
    if (client.isRestart) {
      out.OMPX_RESTART = '1'
      out.OMPX_RESTART_DIR ??= client.restartDir!
    } else {
      delete out.OMPX_RESTART
      delete out.OMPX_RESTART_DIR
    }
  }
  return out
}
