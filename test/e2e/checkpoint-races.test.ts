/**
 * Races of a checkpoint with failures (issue #11), end to end:
 * - a rank killed while global.json is being written (a slow commit: 96 MiB of kv store, ranks
 *   that ignore SIGTERM): global.json lists only complete seqs, `ompx run` ends without an
 *   internal error and leaves no contact file or job dir, and `ompx restart` of the ref works;
 * - stage store, the daemon of a node killed right after the ranks were released and before
 *   their images reached the store: the checkpoint fails at once naming the node, not after
 *   snapc_base_timeout.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { currentMark, FIXTURES, leftovers, lines, spawnOmpx } from '../helpers'
import { BUN, daemonOf, holdArgv, kill, readGlobal, waitIters } from './checkpoint-common'
import { ckptTestEnv, NP } from './checkpoint-jobs'

const env = ckptTestEnv('races', { timeoutMs: 120_000, testTimeoutMs: 180_000 })
const { run, opts, start, restart, rankPid } = env
const BIGKV = [BUN, join(FIXTURES, 'ckpt-bigkv.ts'), '--mb', '24', '--iters', '600', '--sleep-ms', '20']

/** Every listed seq's rank files are on disk with their recorded sizes. */
function expectComplete(dir: string, ref: string): number[] {
  const g = readGlobal(dir, ref) as unknown as { seqs: { seq: number; ranks: { rank: number; files: { path: string; size: number }[] }[] }[] }
  for (const s of g.seqs) {
    expect(s.ranks.map((r) => r.rank)).toEqual([0, 1, 2, 3])
    for (const r of s.ranks) for (const f of r.files) expect(Bun.file(join(dir, ref, String(s.seq), `rank_${r.rank}`, f.path)).size).toBe(f.size)
  }
  return g.seqs.map((s) => s.seq)
}

describe('a failure while the checkpoint commits', () => {
  test('a rank killed while the commit writes (kv.json, global.json.tmp): only complete seqs listed, no internal error, nothing left, restart works', async () => {
    const dir = env.snapDir()
    // 96 MiB of kv: above the default snapc_kv_max_bytes, and what makes the commit slow.
    const p = start(dir, BIGKV, { extra: ['--mca', 'kill_grace', '2', '--mca', 'snapc_kv_max_bytes', String(256 * 1024 * 1024)] })
    let ref = ''
    try {
      for (let r = 0; r < NP; r++) await p.waitFor(new RegExp(`^rank ${r} ready$`), 60_000)
      const victim = await rankPid(p, 1)
      const c = spawnOmpx(['checkpoint', String(p.pid)], opts())
      // Poll for the files of the commit (the kv store, then global.json's temp file), then kill
      // rank 1 while they are being written.
      let seen = false
      const deadline = Date.now() + 60_000
      while (!seen && Date.now() < deadline && c.proc.exitCode === null) {
        const refs = existsSync(dir) ? readdirSync(dir).filter((x) => x.endsWith('.ckpt')) : []
        if (refs.length) ref = refs[0]!
        seen = ref !== '' && (readdirSync(join(dir, ref)).some((x) => x.startsWith('global.json.tmp')) || (existsSync(join(dir, ref, '0')) && readdirSync(join(dir, ref, '0')).some((x) => x.startsWith('kv.json'))))
        if (!seen) await Bun.sleep(2)
      }
      expect(seen).toBe(true)
      kill(victim, 'SIGKILL')
      const a = await c.done()
      const r = await p.done()
      expect(r.stderr).not.toMatch(/internal error/)
      expect(r.code).not.toBe(0)
      expect(r.code).not.toBe(70)
      // Either outcome is honest: taken (and listed whole) or not taken (and not listed).
      const listed = expectComplete(dir, ref)
      if (/no snapshot was taken/.test(a.stderr)) expect(listed).toEqual([])
      else expect(listed).toEqual([0])
      expect(await leftovers(currentMark(), 8000)).toEqual([])
      const session = readdirSync(env.tmp).filter((n) => n.startsWith('ompx-'))
      for (const s of session) expect(readdirSync(join(env.tmp, s)).filter((n) => n.includes(`-${p.pid}`))).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
    const again = await restart(dir, ref, [], { timeoutMs: 120_000 })
    expect(again.stderr).not.toMatch(/internal error/)
    expect(again.code).toBe(0)
    expect(lines(again.stdout).filter((l) => /^rank \d restarted at \d+$/.test(l))).toHaveLength(NP)
  })
})

describe('stage store: a node lost after the release', () => {
  test('kill -9 of the daemon of n2 right after the release: the checkpoint fails at once, naming the node', async () => {
    const dir = env.snapDir()
    // 48 MiB of incompressible state per rank: its transfer to the store takes a while.
    const p = start(dir, holdArgv({ iters: 100000, size: 48 * 1024, sleepMs: 0 }), { extra: ['--mca', 'sstore', 'stage', '--mca', 'snapc_base_timeout', '60'] })
    try {
      await waitIters(p, NP, 10, 90_000)
      const c = spawnOmpx(['checkpoint', '-s', String(p.pid)], opts())
      await c.waitFor(/ Continuing - /, 60_000)
      kill(daemonOf('n2'), 'SIGKILL')
      const t0 = Date.now()
      const a = await c.done()
      expect(a.code).not.toBe(0)
      expect(a.stderr).toMatch(/failed: node n2 was lost before ranks? [\d,]+ reached the global store; no snapshot was taken/)
      expect(a.stderr).not.toMatch(/snapc_base_timeout/)
      expect(Date.now() - t0).toBeLessThan(45_000) // well under the 60 s safety net
      const r = await p.done()
      expect(r.stderr).toMatch(/node n2 lost/)
      expect(r.stderr).not.toMatch(/internal error/)
      const refs = readdirSync(dir).filter((x) => x.endsWith('.ckpt'))
      expect(refs.every((ref) => !existsSync(join(dir, ref, 'global.json')))).toBe(true)
      expect(await leftovers(currentMark(), 8000)).toEqual([])
    } finally {
      p.signal('SIGKILL')
    }
  })
})
