/**
 * The checkpoint on a signal (src/hnp/snapc/signal-checkpoint.ts) over a stand-in coordinator:
 * one checkpoint per job however many nodes report the signal, `term` asks for status 75,
 * `continue` takes another on the next signal, and a failure is said and leaves the job as it is.
 * The real thing, through Slurm, is in test/e2e/slurm.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import type { CkptOptions, CkptResult } from '../../src/hnp/snapc/ckpt-round'
import type { JobCoordinator } from '../../src/hnp/snapc/job-coordinator'
import { RESUME_STATUS, SignalCheckpoint } from '../../src/hnp/snapc/signal-checkpoint'
import type { Coordinators } from '../../src/hnp/snapc/tool-service'
import { checkpointSignal } from '../../src/params/core'

function setup(params: Record<string, string>, fail?: string) {
  const asked: CkptOptions[] = []
  let seq = 0
  const coord = {
    snapc: {
      settled: async () => {},
      request: async (opts: CkptOptions): Promise<CkptResult> => {
        asked.push(opts)
        if (fail) throw new Error(fail)
        return { ref: 'ompx_global_snapshot_1.1.ckpt', seq: seq++, dir: '/x', bytes: 1, timing: {} }
      },
    },
  } as unknown as JobCoordinator
  const said: string[] = []
  const jobs: Coordinators = new Map([['1.1', coord]])
  const sc = new SignalCheckpoint(jobs, { get: (k) => params[k] }, (m) => said.push(m))
  return { sc, asked, said }
}
const settle = () => Bun.sleep(5)

describe('checkpoint on a signal', () => {
  test('the parameter names the signal, with or without SIG', () => {
    expect(checkpointSignal({ get: () => 'USR1' })).toBe('SIGUSR1')
    expect(checkpointSignal({ get: () => 'SIGUSR2' })).toBe('SIGUSR2')
    expect(checkpointSignal({ get: () => '' })).toBeUndefined()
  })

  test('term: three nodes report it, one checkpoint, which ends the job with status 75', async () => {
    const { sc, asked, said } = setup({ snapc_checkpoint_on_signal: 'USR1' })
    for (const n of ['node n1', 'node n2', 'ompx run']) sc.trigger(n)
    await settle()
    sc.trigger('node n3')
    await settle()
    expect(asked).toEqual([{ term: true, stop: false, origin: 'signal', termStatus: RESUME_STATUS }])
    expect(said[0]).toBe('SIGUSR1 on node n1: checkpointing job 1.1, then ending it (snapc_checkpoint_on_signal)')
    expect(said[1]).toBe('job 1.1: checkpoint on SIGUSR1 saved as ompx_global_snapshot_1.1.ckpt seq 0; the job ends with status 75, resume it with: ompx restart ompx_global_snapshot_1.1.ckpt')
    expect(said).toHaveLength(2)
  })

  test('continue: each later signal takes another checkpoint', async () => {
    const { sc, asked, said } = setup({ snapc_checkpoint_on_signal: 'USR2', snapc_checkpoint_on_signal_then: 'continue' })
    sc.trigger('node n1')
    await settle()
    sc.trigger('node n2')
    await settle()
    expect(asked.map((a) => a.term)).toEqual([false, false])
    expect(said.filter((l) => / saved as .* seq \d+$/.test(l))).toHaveLength(2)
    expect(sc.signal).toBe('SIGUSR2')
  })

  test('a checkpoint that cannot be taken is said once, the job untouched', async () => {
    const { sc, asked, said } = setup({ snapc_checkpoint_on_signal: 'USR1' }, 'job 1.1 is not checkpointable: no INIT yet')
    sc.trigger('node n1')
    sc.trigger('node n2')
    await settle()
    expect(asked).toHaveLength(1)
    expect(said.at(-1)).toBe('job 1.1: no checkpoint on SIGUSR1: job 1.1 is not checkpointable: no INIT yet')
  })
})
