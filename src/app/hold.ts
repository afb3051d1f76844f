/**
 * Keeps the app still while it is being checkpointed. From PREP OK until RELEASE or ABORT, no
 * SDK await point lets the app's code go on: yieldToRuntime() waits, replies that arrive are
 * delivered later, and requests the app makes are sent later. So the state onCheckpoint writes
 * cannot change under it (even while it awaits its own writes), and nothing the rank sends after
 * PREP OK can cross the cut the runtime is taking.
 */
export class Hold {
  private on = false
  private outgoing: string[] = []
  private deliveries: (() => void)[] = []
  private waiters: (() => void)[] = []

  get active(): boolean {
    return this.on
  }

  start(): void {
    this.on = true
  }

  /** Send `line` now, or when the hold ends. */
  send(line: string, write: (line: string) => void): void {
    if (this.on) this.outgoing.push(line)
    else write(line)
  }

  /** Settle a reply now, or when the hold ends. */
  deliver(settle: () => void): void {
    if (this.on) this.deliveries.push(settle)
    else settle()
  }

  /** Resolves at once, or when the hold ends. */
  wait(): Promise<void> {
    if (!this.on) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** End the hold: queued requests go out (unless the connection is gone), then the app moves on. */
  end(write: ((line: string) => void) | null): void {
    this.on = false
    const out = this.outgoing.splice(0)
    if (write) for (const l of out) write(l)
    for (const settle of this.deliveries.splice(0)) settle()
    for (const w of this.waiters.splice(0)) w()
  }
}
