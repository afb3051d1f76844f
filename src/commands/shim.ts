/**
 * `ompx shim`: run a program that cannot link the SDK as a checkpointable rank. The logic is in
 * src/shim; the convention the program follows is docs/shim.md.
 */
import { defineCommand } from 'citty'
import type { OptionSpec } from '../args/scan'
import { ActionableError } from '../errors'
import { MAX_SECONDS } from '../params/limits'
import { parseCommand } from './_command'

const specs = [
  { name: 'signal', arity: 1, valueHint: 'SIG', description: 'Signal that tells the program to write its state to $OMPX_CKPT_DIR (default USR1)' },
  { name: 'timeout', arity: 1, valueHint: 'SEC', description: 'How long the program may take to create $OMPX_CKPT_DIR/done after the signal (default 60)' },
] as const satisfies readonly OptionSpec[]

export default defineCommand({
  meta: { name: 'shim', description: 'Make a program that cannot link anything checkpointable (signal + files convention)' },
  async run({ rawArgs, cmd }) {
    const { opts, rest } = await parseCommand(cmd, rawArgs, specs, {
      stopAtPositional: true,
      help: {
        usage: 'ompx shim [--signal SIG] [--timeout SEC] [--] <program> [args...]',
        examples: ['ompx run -np 4 --mca crs self -- ompx shim -- ./solver input.dat', 'ompx run -np 2 -- ompx shim --signal USR2 --timeout 300 -- sh ./loop.sh'],
        notes: [
          'On a checkpoint the shim sends the signal to the program, waits until it creates $OMPX_CKPT_DIR/done, and saves every other file of $OMPX_CKPT_DIR. After a restart the program finds them there again, with OMPX_RESTART=1. See docs/shim.md.',
        ],
      },
    })
    if (!rest.length) throw new ActionableError('no program given: ompx shim [options] -- <program> [args...]')
    const { parseSignal } = await import('../shim/signals')
    const signal = parseSignal(opts.signal ?? 'USR1')
    const timeout = Number(opts.timeout ?? 60)
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_SECONDS) {
      throw new ActionableError(`--timeout needs a positive number of seconds up to ${MAX_SECONDS} (got "${opts.timeout}")`)
    }
    const { runShim } = await import('../shim/run-shim')
    await runShim({ argv: rest, signal, timeoutMs: timeout * 1000 })
  },
})
