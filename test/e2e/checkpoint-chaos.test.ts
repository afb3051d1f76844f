/**
 * Fault injection during checkpoints (issue #11): 20 rounds, each from a fixed seed, kill -9 one
 * process of a job — a rank, a node's `ompx orted`, or `ompx run` itself — at a random moment of
 * a checkpoint that follows a good one, with the central or the stage store. Whatever happens,
 * every seq that global.json lists must restart to the uninterrupted run's result, and nothing
 * of the job may be left running (the leftover guard of every test).
 */
import { describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { cmdlineOf, type OmpxProcess } from '../helpers'
import { appArgv, expectRight, listedSeqs, reference, snapshotRef, waitIters, type AppShape } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const env = ckptTestEnv('chaos', { timeoutMs: 60_000, testTimeoutMs: 120_000 })
const SHAPE: AppShape = { iters: 120, size: 2, sleepMs: 15 }
const want = reference('app', SHAPE, NP)
const ROUNDS = 20
const TARGETS = ['rank', 'orted', 'run'] as const

/** mulberry32: a small PRNG, so every run of the suite injects the same faults. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The `ompx orted` of node `node` serving the HNP of job `p` (its node dirs carry the HNP's pid). */
function ortedPid(p: OmpxProcess, node: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    const cmd = cmdlineOf(Number(d))
    if (cmd.includes(' orted ') && cmd.includes(`--node ${node} `) && cmd.includes(`nodes-${p.pid}`)) return Number(d)
  }
  return undefined
}

/** Each round's fault, drawn once from its own seed. */
const rounds = Array.from({ length: ROUNDS }, (_, round) => {
  const rand = prng(0x5eed + round)
  const target = TARGETS[Math.floor(rand() * TARGETS.length)]!
  const store = rand() < 0.5 ? 'stage' : 'central'
  return [round, target, Math.floor(rand() * 400), store, Math.floor(rand() * NP)] as const
})

describe('kill -9 of a random process at a random moment of a checkpoint', () => {
  test.each(rounds)('round %d: kill %s %d ms into the checkpoint (%s store): every listed seq restarts right', async (_round, target, delayMs, store, victimRank) => {
    const dir = env.snapDir()
    const p = env.start(dir, appArgv(SHAPE), { extra: ['--mca', 'sstore', store] })
    let ref = ''
    try {
      await waitIters(p, NP, 10)
      ;({ ref } = snapshotRef((await env.checkpoint(p)).stdout))
      const victim = target === 'run' ? p.pid : target === 'orted' ? ortedPid(p, 'n2') : await env.rankPid(p, victimRank)
      expect(victim).toBeDefined()
      const tool = env.run(['checkpoint', String(p.pid)])
      await Bun.sleep(delayMs)
      try {
        process.kill(victim!, 'SIGKILL')
      } catch {
        // Already gone (the job may have finished): the round still checks what is listed.
      }
      await tool
      await p.done()
    } finally {
      p.signal('SIGKILL')
    }
    const seqs = listedSeqs(dir, ref)
    expect(seqs[0]).toBe(0)
    for (const seq of seqs) await expectRight(env.restart(dir, ref, ['--seq', String(seq)]), want)
  })
})
