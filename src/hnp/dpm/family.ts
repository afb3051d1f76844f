/**
 * A job and the jobs it spawned (MPI_Comm_spawn), and theirs: one family per job that `ompx
 * run` started or a client submitted to `ompx hnp`. The family ends when every member has, so
 * the run (or the submission) waits for children that outlive their parent; its status is the
 * first job's when that failed, else the first failing child's. A member that fails ends the
 * others, as a failing rank ends its job (ORTE's errmgr aborts the whole family the same way),
 * unless errmgr_continue: MPI jobs joined by an intercommunicator cannot go on without it. The
 * user's signals reach every member, and Ctrl-C or the first job's --timeout ends the whole
 * family, errmgr_continue or not.
 */

/** What the family needs of a member's runner: ending it for a reason outside it, and the user's signals. */
export interface FamilyRunner {
  /** --timeout ended it: the family's bound, which errmgr_continue does not lift. */
  readonly timedOut: boolean
  abortJob(status: number, why: string): void
  interrupt(sig: NodeJS.Signals): void
  signalAll(sig: NodeJS.Signals): void
}

export class JobFamily {
  private members = new Map<string, { runner: FamilyRunner; parent?: string }>()
  /** Members running and spawns being started: the family is done when none is left. */
  private pending = new Set<Promise<unknown>>()
  private rootStatus = 0
  private childFailure = 0
  /** A member failed: the others are being ended, and nothing new may start. */
  ending = false

  constructor(
    readonly root: string,
    private readonly errmgrContinue: boolean,
    /** The first job's message prefix ("ompx run"): its children's start with it. */
    readonly who?: string,
  ) {}

  add(jobid: string, runner: FamilyRunner, done: Promise<number>, parent?: string): void {
    this.members.set(jobid, { runner, parent })
    this.hold(done.then((status) => this.ended(jobid, status, parent)))
  }

  /** Work the family must wait for (a spawn between its request and its job's start). */
  hold(work: Promise<unknown>): void {
    const p = work.catch(() => {})
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }

  private ended(jobid: string, status: number, parent?: string): void {
    const timedOut = this.members.get(jobid)?.runner.timedOut === true
    this.members.delete(jobid)
    if (jobid === this.root) this.rootStatus = status
    else if (status !== 0 && this.childFailure === 0) this.childFailure = status
    if (status === 0 || (this.errmgrContinue && !timedOut) || this.ending) return
    this.ending = true
    const who = parent ? `job ${jobid} (spawned by job ${parent})` : `job ${jobid}`
    for (const m of this.members.values()) m.runner.abortJob(status, `${who} ended with status ${status}`)
  }

  /** The user's INT/TERM/HUP: every member ends (errmgr_continue or not), and nothing new starts. */
  interrupt(sig: NodeJS.Signals): void {
    this.ending = true
    for (const m of this.members.values()) m.runner.interrupt(sig)
  }

  /** The user's other signals (USR1/USR2, CONT, STOP for Ctrl-Z) reach every member's ranks. */
  signalAll(sig: NodeJS.Signals): void {
    for (const m of this.members.values()) m.runner.signalAll(sig)
  }

  /** Whether `jobid` is a running member (a spawn asked by a job that is gone is refused). */
  has(jobid: string): boolean {
    return this.members.has(jobid)
  }

  /** Every member has ended: the family's status. */
  async done(): Promise<number> {
    while (this.pending.size) await Promise.all([...this.pending])
    return this.rootStatus || this.childFailure
  }
}
