/**
 * `ompx run` on one node: rank environment, MPMD, working directory, allocation (-H, --hostfile),
 * mapping, oversubscription and --display-map. Spawns the compiled binary (OMPX_BIN or dist/ompx).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, lines, ompx, userErrorProblems } from '../helpers'

guardLeftovers()
// Per test; ompx calls have their own hard timeouts (helpers.ts). bunfig has no test timeout key.
setDefaultTimeout(60_000)
const ENV = join(FIXTURES, 'env.sh')
const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'ompx-run-basic-')))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Parse the "ENV k=v ..." lines of env.sh into one record per rank, ordered by rank. */
function envLines(stdout: string): Record<string, string>[] {
  const recs = lines(stdout)
    .filter((l) => l.startsWith('ENV '))
    .map((l) => Object.fromEntries(l.slice(4).split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])))
  return recs.sort((a, b) => Number(a.OMPI_COMM_WORLD_RANK) - Number(b.OMPI_COMM_WORLD_RANK))
}

describe('rank environment', () => {
  test('-np 4: every variable, right values', async () => {
    const r = await ompx(['run', '--oversubscribe', '-np', '4', ENV])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const recs = envLines(r.stdout)
    expect(recs.map((e) => e.OMPI_COMM_WORLD_RANK)).toEqual(['0', '1', '2', '3'])
    for (const [i, e] of recs.entries()) {
      expect(e.OMPI_COMM_WORLD_SIZE).toBe('4')
      expect(e.OMPI_COMM_WORLD_LOCAL_RANK).toBe(String(i))
      expect(e.OMPI_COMM_WORLD_LOCAL_SIZE).toBe('4')
      expect(e.OMPI_COMM_WORLD_NODE_RANK).toBe(String(i))
      expect(e.OMPI_UNIVERSE_SIZE).toMatch(/^[1-9]\d*$/)
      expect(e.OMPX_RANK).toBe(String(i))
      expect(e.OMPX_SIZE).toBe('4')
      expect(e.OMPX_JOBID).not.toMatch(/^$|<unset>/)
      expect(e.OMPX_NODE).not.toMatch(/^$|<unset>/)
      expect(e.sessiondir).toBe('yes')
      // One node, one job: these are shared by all ranks.
      for (const k of ['OMPX_JOBID', 'OMPX_NODE', 'OMPI_UNIVERSE_SIZE']) expect(e[k]).toBe(recs[0]![k]!)
    }
  })

  test('-x FOO=bar sets a value, -x HOME passes the launcher value through', async () => {
    const home = join(tmp, 'home')
    const r = await ompx(['run', '-np', '2', '-x', 'FOO=bar', '-x', 'HOME', ENV, 'FOO', 'HOME'], { env: { HOME: home, FOO: 'launcher' } })
    expect(r.code).toBe(0)
    const recs = envLines(r.stdout)
    expect(recs).toHaveLength(2)
    for (const e of recs) {
      expect(e.FOO).toBe('bar')
      expect(e.HOME).toBe(home)
    }
  })
})

test('the session directory is removed after the job, also when a rank fails', async () => {
  for (const prog of ['echo "$OMPX_SESSION_DIR"', 'echo "$OMPX_SESSION_DIR"; exit 3']) {
    const r = await ompx(['run', '-np', '1', 'sh', '-c', prog])
    const dir = lines(r.stdout)[0]!
    expect(dir).toStartWith('/')
    expect(existsSync(dir)).toBe(false)
  }
})

test('MPMD: two app contexts, consecutive ranks, own argv each', async () => {
  const app = 'echo "$0 $OMPX_RANK $OMPX_SIZE $OMPI_COMM_WORLD_SIZE $*"'
  const r = await ompx(['run', '--oversubscribe', '-np', '2', 'sh', '-c', app, 'A', 'x', ':', '-np', '3', 'sh', '-c', app, 'B', 'y', 'z'])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  expect(lines(r.stdout).sort()).toEqual(['A 0 5 5 x', 'A 1 5 5 x', 'B 2 5 5 y z', 'B 3 5 5 y z', 'B 4 5 5 y z'])
})

test('-- before the program; program options are not taken by ompx', async () => {
  const r = await ompx(['run', '-np', '2', '--', 'sh', '-c', 'echo "$OMPX_RANK $*"', 'sh', '-np', '9', '--tag-output'])
  expect(r.code).toBe(0)
  expect(lines(r.stdout).sort()).toEqual(['0 -np 9 --tag-output', '1 -np 9 --tag-output'])
})

test('--wdir runs ranks in that directory', async () => {
  const r = await ompx(['run', '-np', '2', '--wdir', tmp, 'pwd'])
  expect(r.code).toBe(0)
  expect(lines(r.stdout)).toEqual([tmp, tmp])
})

describe('allocation and mapping', () => {
  const hostfile = join(tmp, 'hosts')
  writeFileSync(hostfile, '# test allocation\nlocalhost slots=3 max_slots=8   # three slots\n\n')

  test('--hostfile slots=3: -np 3 runs', async () => {
    const r = await ompx(['run', '--hostfile', hostfile, '-np', '3', ENV])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(envLines(r.stdout).map((e) => e.OMPI_COMM_WORLD_SIZE)).toEqual(['3', '3', '3'])
  })

  test('--hostfile slots=3 without -np runs one rank per slot', async () => {
    const r = await ompx(['run', '--hostfile', hostfile, ENV])
    expect(r.code).toBe(0)
    expect(envLines(r.stdout).map((e) => e.OMPX_RANK)).toEqual(['0', '1', '2'])
  })

  test('--hostfile slots=3: -np 4 is oversubscription, an error mentioning slots', async () => {
    const r = await ompx(['run', '--hostfile', hostfile, '-np', '4', ENV])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(/slot/i)
    expect(r.stdout).toBe('')
  })

  test('-H localhost:2 runs 2 ranks; -np 3 on it is oversubscription', async () => {
    const ok = await ompx(['run', '-H', 'localhost:2', ENV])
    expect(ok.code).toBe(0)
    const recs = envLines(ok.stdout)
    expect(recs.map((e) => e.OMPX_RANK)).toEqual(['0', '1'])
    expect(recs[0]!.OMPI_UNIVERSE_SIZE).toBe('2')
    const bad = await ompx(['run', '-H', 'localhost:2', '-np', '3', 'true'])
    expect(userErrorProblems(bad)).toEqual([])
    expect(bad.stderr).toMatch(/slot/i)
  })

  test('-H with a host other than this one is a clear error', async () => {
    const r = await ompx(['run', '-H', 'nosuchhost.invalid:2', '-np', '2', 'true'])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toContain('nosuchhost.invalid')
  })

  test('-np 1000 without --oversubscribe: error explaining slots', async () => {
    const r = await ompx(['run', '-np', '1000', 'true'])
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(/slot/i)
  })

  test('-np 8 --oversubscribe runs', async () => {
    const r = await ompx(['run', '-np', '8', '--oversubscribe', ENV])
    expect(r.code).toBe(0)
    expect(envLines(r.stdout)).toHaveLength(8)
  })

  test.each([['slot:OVERSUBSCRIBE'], ['node:OVERSUBSCRIBE'], ['ppr:6:node'], ['seq']])('--map-by %s', async (how) => {
    const args = how === 'seq' ? ['--hostfile', hostfile] : how.startsWith('ppr') ? ['--oversubscribe'] : ['-np', '6']
    const r = await ompx(['run', '--map-by', how, ...args, ENV])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    // seq: one rank per hostfile line (1 here); ppr:6:node: 6 on the one node.
    const n = how === 'seq' ? 1 : 6
    expect(envLines(r.stdout).map((e) => e.OMPX_RANK)).toEqual(Array.from({ length: n }, (_, i) => String(i)))
  })

  test('--display-map lists every rank', async () => {
    const r = await ompx(['run', '--display-map', '--oversubscribe', '-np', '3', 'true'])
    expect(r.code).toBe(0)
    const out = r.stdout + r.stderr
    for (const rank of [0, 1, 2]) expect(out).toMatch(new RegExp(`rank\\D{0,3}${rank}\\b|\\[\\d+,${rank}\\]`, 'i'))
  })
})
