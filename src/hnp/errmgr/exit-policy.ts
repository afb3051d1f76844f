/**
 * The error manager's policy: which rank exits are failures, which failure decides the job's
 * exit status, and what the user is told. Ranks we terminated ourselves while aborting are
 * victims, not failures, so the status is that of the lowest rank that failed on its own.
 */
import { constants } from 'node:os'
import type { RankExit } from '../../node/contract'

export function signalNumber(sig: string): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0
}

/** Shell convention: a signal death is 128 + its number. */
export function exitStatus(e: RankExit): number {
  return e.signal ? 128 + signalNumber(e.signal) : (e.code ?? 1)
}

export function isFailure(e: RankExit): boolean {
  return e.signal !== null || e.code !== 0
}

/**
 * "rank 1 (pid 4242) on node n2 exited with status 3". A rank with no pid never ran (its launch
 * or restore failed; the node daemon said why on its own line): say that, not "pid 0".
 */
export function describeExit(e: RankExit): string {
  if (!(e.pid > 0)) return `rank ${e.rank} on node ${e.node} could not be started${e.signal ? '' : ` (status ${e.code})`}`
  const how = e.signal
    ? `was killed by signal ${signalNumber(e.signal)} (${e.signal})`
    : `exited with status ${e.code}`
  return `rank ${e.rank} (pid ${e.pid}) on node ${e.node} ${how}`
}

export class FailureLedger {
  private failures = new Map<number, RankExit>()

  /**
   * Record a failure. While aborting, a death by the signals we send is ours, not the rank's;
   * any other non-zero exit (even one racing our abort) still counts as the rank's own.
   */
  record(e: RankExit, aborting: boolean): void {
    if (!isFailure(e)) return
    if (aborting && (e.signal === 'SIGTERM' || e.signal === 'SIGKILL')) return
    this.failures.set(e.rank, e)
  }

  get count(): number {
    return this.failures.size
  }

  /** 0 when no rank failed on its own; else the status of the lowest failing rank. */
  status(): number {
    const lowest = [...this.failures.keys()].sort((a, b) => a - b)[0]
    return lowest === undefined ? 0 : exitStatus(this.failures.get(lowest)!)
  }
}
