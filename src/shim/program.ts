/**
 * The program under the shim: started in the shim's own process group (so the daemon's group
 * signals and the reaper reach it), stdio inherited, and checkpointed by the file convention of
 * docs/shim.md: signal it, wait for $OMPX_CKPT_DIR/done.
 */
import type { Subprocess } from 'bun'
import { existsSync, rmSync } from 'node:fs'
import { ActionableError } from '../errors'
import { describeStatus } from './signals'
import type { WorkDir } from './work-dir'

/** How often we look for the done file: short next to any real state write, cheap to stat. */
const POLL_MS = 5

export interface ProgramExit {
  code: number | null
  signal: string | null
}

export class Program {
  readonly exited: Promise<ProgramExit>
  private status: ProgramExit | null = null
  private sub: Subprocess<'inherit', 'inherit', 'inherit'>

  constructor(argv: string[], env: Record<string, string>) {
    try {
      this.sub = Bun.spawn(argv, { env, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit' })
    } catch (err) {
      // ENOENT and EACCES are the user's to fix; 127 as a shell says "command not found".
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'ENOENT' ? 'no such program (not a path, not in PATH)' : code === 'EACCES' ? 'permission denied' : (err as Error).message
      throw new ActionableError(`cannot start ${argv[0]}: ${why}`, 127)
    }
    this.exited = this.sub.exited.then(() => {
      const signal = this.sub.signalCode ? String(this.sub.signalCode) : null
      const status: ProgramExit = { code: signal ? null : this.sub.exitCode, signal }
      this.status = status
      return status
    })
  }

  get pid(): number {
    return this.sub.pid
  }

  get running(): boolean {
    return this.status === null
  }

  kill(sig: NodeJS.Signals): void {
    try {
      process.kill(this.sub.pid, sig)
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it ended. */
  async terminate(graceMs: number): Promise<void> {
    if (!this.running) return
    this.kill('SIGTERM')
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  /**
   * Stage 2 of a checkpoint: remove the done file, send `sig`, wait until the program creates
   * the done file again. Rejects with the reason when it ends first or takes longer than `timeoutMs`.
   */
  async checkpoint(work: WorkDir, sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const name = sig.replace(/^SIG/, '')
    const ended = () => this.status
    const before = ended()
    if (before) throw new Error(`the program had already ended (${describeStatus(before.code, before.signal)})`)
    rmSync(work.donePath, { force: true })
    this.kill(sig)
    const deadline = performance.now() + timeoutMs
    while (!existsSync(work.donePath)) {
      const status = ended()
      if (status) {
        const how = describeStatus(status.code, status.signal)
        const hint = status.signal === sig ? `; does it trap SIG${name}?` : ''
        throw new Error(`the program ended (${how}) before it created $OMPX_CKPT_DIR/done after SIG${name}${hint}`)
      }
      if (performance.now() > deadline) {
        throw new Error(`the program did not create $OMPX_CKPT_DIR/done within ${fmtSeconds(timeoutMs)} s after SIG${name}; does it trap SIG${name}?`)
      }
      await Bun.sleep(POLL_MS)
    }
  }
}

function fmtSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10)
}
