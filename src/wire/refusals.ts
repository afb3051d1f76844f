/**
 * Warnings about refused connections, rate-limited. Anyone who can reach the HNP's port can
 * open connections that fail the handshake; each used to cost a warning line in the job's
 * stderr, so a port scan or a flood buried the job's own output (7,000 lines). Now the first
 * few refusals of a window are reported one by one, the rest are counted and summarised in one
 * line when the window ends ("N more connections refused in the last T s"). What the peer
 * chose (its reason text) is escaped and length-capped by `untrusted` before it is printed.
 */
import { log, untrusted } from '../log'

export interface RefusalLimits {
  /** Refusals reported one by one per window. */
  burst: number
  /** Length of a window in ms; it starts with the first refusal after a quiet spell. */
  windowMs: number
}

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = { burst: 5, windowMs: 10_000 }

export class RefusalLog {
  private limits: RefusalLimits
  private shown = 0
  private suppressed = 0
  private latest = ''
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(limits: Partial<RefusalLimits> = {}) {
    this.limits = { ...DEFAULT_REFUSAL_LIMITS, ...limits }
  }

  /** Change the limits (tests, a parameter); flushes what the current window holds. */
  configure(limits: Partial<RefusalLimits>): void {
    this.flush()
    this.limits = { ...this.limits, ...limits }
  }

  /** One connection from `remote` was refused because `why` (peer-controlled parts included). */
  refused(remote: string, why: string): void {
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.limits.windowMs)
      this.timer.unref?.()
    }
    const text = `${untrusted(remote, 80)}: ${untrusted(why, 160)}`
    if (this.shown < this.limits.burst) {
      this.shown++
      log.warn(`wire: refused connection from ${text}`)
    } else {
      this.suppressed++
      this.latest = text
    }
  }

  /** End the window now: print the summary if refusals were held back. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const n = this.suppressed
    if (n > 0) {
      const secs = +(this.limits.windowMs / 1000).toFixed(1)
      log.warn(`wire: ${n} more connection${n === 1 ? '' : 's'} refused in the last ${secs} s (latest from ${this.latest})`)
    }
    this.shown = 0
    this.suppressed = 0
    this.latest = ''
  }
}

/** The process's one refusal log: every listener of this process shares its budget. */
export const refusals = new RefusalLog()
