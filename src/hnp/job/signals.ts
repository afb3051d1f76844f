/**
 * What `ompx run` does with the signals it receives (mpirun's conventions): INT/TERM/HUP end
 * the job gracefully (twice: at once), USR1/USR2/CONT are passed on to every rank (but for the
 * one snapc_checkpoint_on_signal names, which checkpoints the job), and TSTP
 * stops the ranks and then ourselves, so shell job control (Ctrl-Z, fg) works on the whole job.
 */
import type { JobRunner } from './job-runner'

export function installJobSignals(
  runner: Pick<JobRunner, 'interrupt' | 'signalAll'>,
  checkpoint?: { signal: NodeJS.Signals; take: () => void },
): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => runner.interrupt(sig))
  // The checkpoint signal (snapc_checkpoint_on_signal) is ours: it takes a checkpoint instead.
  for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => (checkpoint?.signal === sig ? checkpoint.take() : runner.signalAll(sig)))
  process.on('SIGCONT', () => runner.signalAll('SIGCONT'))
  process.on('SIGTSTP', () => {
    runner.signalAll('SIGSTOP')
    process.kill(process.pid, 'SIGSTOP')
  })
}
