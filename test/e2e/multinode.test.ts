/**
 * Multi-node runs on simulated nodes (local launcher: one `ompx orted` per node on 127.0.1.N):
 * placement by slot and by node, --display-map, IO forwarded from remote daemons (tags, stderr,
 * many lines intact), and a remote rank's exit status.
 */
import { $ } from 'bun'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, lines, ompx, simHostfile, type RunOpts } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-multinode-'))
const LINES = join(tmp, 'lines')
const ENVSH = join(FIXTURES, 'env.sh')
// A private session directory: other test files' HNPs never show up in ours.
const run = (args: string[], o: RunOpts = {}) => ompx(args, { timeoutMs: 40_000, ...o, env: { TMPDIR: tmp, ...o.env } })
beforeAll(async () => {
  await $`cc -O2 -o ${LINES} ${join(FIXTURES, 'lines.c')}`
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** rank -> "node/localRank/localSize" from env.sh lines. */
function placement(stdout: string): Map<number, string> {
  const out = new Map<number, string>()
  for (const l of lines(stdout)) {
    const v = Object.fromEntries(l.split(' ').slice(1).map((kv) => kv.split('=', 2) as [string, string]))
    out.set(Number(v.OMPI_COMM_WORLD_RANK), `${v.OMPX_NODE}/${v.OMPI_COMM_WORLD_LOCAL_RANK}/${v.OMPI_COMM_WORLD_LOCAL_SIZE}`)
  }
  return out
}

/** --display-map as node -> [[rank, localRank], ...]. */
function parseMap(stdout: string): Record<string, [number, number][]> {
  const map: Record<string, [number, number][]> = {}
  let node = ''
  for (const l of lines(stdout)) {
    const n = l.match(/Data for node: (\S+)/)
    if (n) map[(node = n[1]!)] = []
    const p = l.match(/Process rank: (\d+) Local rank: (\d+)/)
    if (p) map[node]!.push([Number(p[1]), Number(p[2])])
  }
  return map
}

describe('mapping across simulated nodes', () => {
  test('by slot (hostfile, 4 nodes x 2 slots): ranks fill each node in turn', async () => {
    const hf = simHostfile(join(tmp, 'hf-slot'), [['n1', 2], ['n2', 2], ['n3', 2], ['n4', 2]])
    const r = await run(['run', '--hostfile', hf, '--display-map', '-np', '8', ENVSH])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const want = new Map<number, string>()
    for (let rank = 0; rank < 8; rank++) want.set(rank, `n${Math.floor(rank / 2) + 1}/${rank % 2}/2`)
    const envLines = lines(r.stdout).filter((l) => l.startsWith('ENV '))
    expect(envLines).toHaveLength(8)
    expect(placement(envLines.join('\n'))).toEqual(want)
    expect(parseMap(r.stdout)).toEqual({
      n1: [[0, 0], [1, 1]],
      n2: [[2, 0], [3, 1]],
      n3: [[4, 0], [5, 1]],
      n4: [[6, 0], [7, 1]],
    })
  })

  test('by node (-H, 3 nodes, 5 ranks): round robin over the nodes', async () => {
    const r = await run(['run', '--launcher', 'local', '-H', 'n1:2,n2:2,n3:2', '--map-by', 'node', '--display-map', '-np', '5', ENVSH])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const envLines = lines(r.stdout).filter((l) => l.startsWith('ENV '))
    expect(placement(envLines.join('\n'))).toEqual(
      new Map([
        [0, 'n1/0/2'],
        [1, 'n2/0/2'],
        [2, 'n3/0/1'],
        [3, 'n1/1/2'],
        [4, 'n2/1/2'],
      ]),
    )
    expect(parseMap(r.stdout)).toEqual({ n1: [[0, 0], [3, 1]], n2: [[1, 0], [4, 1]], n3: [[2, 0]] })
  })
})

describe('IO from remote daemons', () => {
  const TAG = /^\[([^,\]]+),(\d+)\]<(stdout|stderr)>:(.*)$/

  test('--tag-output tags stdout and stderr of every remote rank with its rank', async () => {
    const r = await run([
      'run', '--launcher', 'local', '-H', 'n1:2,n2:2,n3:2,n4:2', '--tag-output', '-np', '8',
      'sh', '-c', 'echo "out $OMPX_RANK $OMPX_NODE"; echo "err $OMPX_RANK $OMPX_NODE" >&2',
    ])
    expect(r.code).toBe(0)
    for (const [stream, text, word] of [['stdout', r.stdout, 'out'], ['stderr', r.stderr, 'err']] as const) {
      const got = lines(text).map((l) => {
        const m = l.match(TAG)
        expect(m, l).not.toBeNull()
        expect(m![3]).toBe(stream)
        return `${m![2]}:${m![4]}`
      })
      const want = [...Array(8).keys()].map((rank) => `${rank}:${word} ${rank} n${Math.floor(rank / 2) + 1}`)
      expect(got.sort()).toEqual(want.sort())
    }
  })

  test('--stdin 2 feeds a rank on a remote node (n2); the others read EOF', async () => {
    const r = await run(['run', '--launcher', 'local', '-H', 'n1:2,n2:2', '--stdin', '2', '-np', '4', 'sh', '-c', 'echo "r$OMPX_RANK $OMPX_NODE:$(tr "\\n" ,)"'], {
      stdin: 'alpha\nbeta\n',
    })
    expect(r.code).toBe(0)
    expect(lines(r.stdout).sort()).toEqual(['r0 n1:', 'r1 n1:', 'r2 n2:alpha,beta,', 'r3 n2:'])
  })

  test('16 ranks x 2000 lines over 4 nodes: nothing lost, duplicated, reordered or torn', async () => {
    const N = 16
    const M = 2000
    const expected = (rank: number, i: number) =>
      `r${rank} l${i} ${String.fromCharCode(97 + ((rank + i) % 26)).repeat((rank * 7 + i * 13) % 120)}`
    const r = await run(['run', '--launcher', 'local', '-H', 'n1:4,n2:4,n3:4,n4:4', '--tag-output', '-np', String(N), LINES, String(M)], {
      timeoutMs: 50_000,
    })
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const next = new Array<number>(N).fill(0)
    const bad: string[] = []
    for (const l of lines(r.stdout)) {
      const m = l.match(TAG)
      const body = m?.[4] ?? ''
      const b = body.match(/^r(\d+) l(\d+) /)
      const rank = Number(m?.[2])
      if (!m || m[3] !== 'stdout' || !b || Number(b[1]) !== rank || body !== expected(rank, Number(b[2]))) bad.push(l.slice(0, 60))
      else if (Number(b[2]) !== next[rank]) bad.push(`rank ${rank}: got l${b[2]}, want l${next[rank]}`)
      else next[rank]!++
    }
    expect(bad.slice(0, 5)).toEqual([])
    expect(next).toEqual(new Array(N).fill(M))
  })
})

describe('exit status from a remote node', () => {
  test('rank 3 on n2 exits 7: ompx run exits 7, names rank 3 and node n2, stops the others', async () => {
    const r = await run([
      'run', '--launcher', 'local', '-H', 'n1:2,n2:2,n3:2', '-np', '6',
      'sh', '-c', 'if [ "$OMPX_RANK" = 3 ]; then sleep 0.5; exit 7; fi; exec sleep 30',
    ])
    expect(r.code).toBe(7)
    expect(r.ms).toBeLessThan(25_000)
    const msg = lines(r.stderr).filter((l) => /rank 3\b/.test(l))
    expect(msg).toHaveLength(1)
    expect(msg[0]).toMatch(/\bn2\b/)
    expect(msg[0]).toMatch(/\b7\b/)
  })

  test('a rank on n3 killed by SIGKILL: exit 137, the message names the rank, n3 and the signal', async () => {
    const r = await run([
      'run', '--launcher', 'local', '-H', 'n1:1,n2:1,n3:1', '-np', '3',
      'sh', '-c', 'if [ "$OMPX_RANK" = 2 ]; then sleep 0.3; kill -9 $$; fi; exec sleep 30',
    ])
    expect(r.code).toBe(137)
    const msg = lines(r.stderr).filter((l) => /rank 2\b/.test(l))
    expect(msg).toHaveLength(1)
    expect(msg[0]).toMatch(/\bn3\b/)
    expect(msg[0]).toMatch(/SIGKILL|signal 9/)
  })

  test('every rank exits 0 on every node: exit 0, no stderr', async () => {
    const r = await run(['run', '--launcher', 'local', '-H', 'n1:1,n2:1,n3:1,n4:1', '-np', '4', 'true'])
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '' })
  })
})
