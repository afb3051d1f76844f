/**
 * Signals for `ompx shim`: naming the checkpoint signal, passing what the shim receives on to
 * the program, and ending the shim the way the program ended, so the daemon sees the program's
 * exit code or signal as if there were no shim.
 */
import { constants } from 'node:os'
import { ActionableError } from '../errors'

/**
 * What the shim passes on. Under ompx the daemon sends TERM, INT, HUP and CONT to the rank's
 * whole process group, which holds the program too, so a program sees those twice (see
 * docs/shim.md); USR1/USR2 go to the shim alone and reach the program only through here.
 */
export const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT', 'SIGWINCH', 'SIGALRM'] as const

/** Default action of these is to end the process: what the shim does with them before the program runs. */
const FATAL = new Set<string>(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM'])

/** "USR1", "SIGUSR1", "usr1" or "10" -> "SIGUSR1"; only signals a program can trap. */
export function parseSignal(text: string): NodeJS.Signals {
  const signals = constants.signals as Record<string, number>
  const upper = text.toUpperCase()
  const name = /^\d+$/.test(text)
    ? Object.keys(signals).find((k) => signals[k] === Number(text))
    : upper.startsWith('SIG') ? upper : `SIG${upper}`
  if (!name || !(name in signals)) throw new ActionableError(`unknown signal "${text}" (try USR1, USR2, or another signal name)`)
  if (name === 'SIGKILL' || name === 'SIGSTOP') throw new ActionableError(`${name} cannot be trapped, so a program cannot checkpoint on it; use USR1 or USR2`)
  return name as NodeJS.Signals
}

export function signalNumber(sig: string): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0
}

/** Forward FORWARDED signals to `target()`; before there is a program, fatal ones end the shim. */
export function forwardSignals(target: () => number | null): void {
  for (const sig of FORWARDED) {
    process.on(sig, () => {
      const pid = target()
      if (pid !== null) {
        try {
          process.kill(pid, sig)
        } catch {
          // The program just ended: its exit is being handled.
        }
      } else if (FATAL.has(sig)) exitLike(null, sig)
    })
  }
}

/** Exit with the program's status: its code, or the same signal (128+n if that does not kill us). */
export function exitLike(code: number | null, signal: string | null): never {
  if (signal) {
    process.removeAllListeners(signal)
    try {
      process.kill(process.pid, signal as NodeJS.Signals)
    } catch {
      // Not a signal we may send ourselves: the code below says the same thing.
    }
    // Delivery to ourselves is immediate for signals that kill by default; the rest land here.
    Bun.sleepSync(50)
    process.exit(128 + signalNumber(signal))
  }
  process.exit(code ?? 1)
}

export function describeStatus(code: number | null, signal: string | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`
}
