/**
 * crs criu through ompx (issue #5): jobs of unmodified programs across simulated nodes,
 * checkpointed with and without --term and restarted — on the same nodes and on others — must go
 * on from where they were dumped: each rank's output before the dump plus its output after the
 * restore equals an uninterrupted run. A damaged snapshot gives a clear error and a non-zero exit.
 *
 * Needs root and a working criu (scripts/install-criu.sh, run here): skipped with the reason
 * elsewhere, FAILS in CI (CI=true), where these tests must run.
 */
import { $ } from 'bun'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, ompx, REPO, spawnOmpx } from '../helpers'
import { referenceLines } from '../fixtures/criu-helpers'
import { dirArgs, snapshotRef } from './checkpoint-common'

setDefaultTimeout(90_000)
guardLeftovers()

function setupCriu(): { path: string } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: `not root (uid ${process.getuid?.()}): criu needs root` }
  const r = Bun.spawnSync(['bash', join(REPO, 'scripts/install-criu.sh')], { stdout: 'pipe', stderr: 'pipe', timeout: 600_000 })
  const path = r.stdout.toString().trim()
  if (r.exitCode !== 0 || !path) return { reason: `scripts/install-criu.sh failed: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}` }
  return { path }
}

const setup = setupCriu()
const reason = 'reason' in setup ? setup.reason : null
if (reason && process.env.CI === 'true') {
  test('criu is available (required in CI)', () => {
    throw new Error(`the crs criu tests cannot run: ${reason}`)
  })
} else if (reason) console.warn(`skipping the crs criu job tests: ${reason}`)
const ENV = { OMPX_CRIU: 'path' in setup ? setup.path : '' }

const tmp = mkdtempSync(join(tmpdir(), 'ompx-criu-job-'))
const COUNTER = join(tmp, 'criu-counter')
const LOOP = join(FIXTURES, 'criu-loop.sh')
const PY = join(FIXTURES, 'criu-counter.py')
beforeAll(async () => {
  if (!reason) await $`cc -O2 -o ${COUNTER} ${join(FIXTURES, 'criu-counter.c')}`
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Lines of each rank from `--tag-output` output ("[job,rank]<stdout>:line"), without the pid banner. */
function byRank(stdout: string): Map<number, string[]> {
  const out = new Map<number, string[]>()
  for (const l of stdout.split('\n')) {
    const m = /^\[[^,\]]+,(\d+)\]<stdout>:(.*)$/.exec(l)
    if (!m || m[2]!.startsWith('start ')) continue
    const r = Number(m[1])
    out.set(r, [...(out.get(r) ?? []), m[2]!])
  }
  return out
}

/** Every rank's lines before the dump + after the restore must be the uninterrupted run's. */
function expectContinued(before: string, after: string, np: number, reference: string[]): void {
  const a = byRank(before)
  const b = byRank(after)
  for (let rank = 0; rank < np; rank++) {
    const restored = b.get(rank) ?? []
    // Restored, not started again: the first line after the restore is not the first line.
    expect(restored.length).toBeGreaterThan(0)
    expect(restored[0]).not.toBe(reference[0])
    expect([...(a.get(rank) ?? []), ...restored]).toEqual(reference)
  }
}

interface Dumped {
  snap: string
  ref: string
  /** Output of the job up to its --term checkpoint. */
  stdout: string
}

/**
 * Run `argv` with crs criu on `hosts`, wait for `ready` on rank np-1, optionally take a
 * checkpoint that leaves the job running, then `ompx checkpoint --term`: the job ends with 0.
 */
async function runAndTerm(argv: string[], np: number, hosts: string, ready: RegExp, keepRunningFirst: RegExp | null): Promise<Dumped> {
  const snap = mkdtempSync(join(tmp, 'snap-'))
  const job = spawnOmpx(['run', '--mca', 'crs', 'criu', '-np', String(np), '--launcher', 'local', '-H', hosts, '--tag-output', ...dirArgs(snap), '--', ...argv], {
    env: ENV,
    timeoutMs: 60_000,
  })
  await job.waitFor(ready, 20_000)
  if (keepRunningFirst) {
    const c = await ompx(['checkpoint', String(job.pid)], { env: ENV, timeoutMs: 30_000 })
    expect(c.stderr).toBe('')
    expect(c.code).toBe(0)
    expect(snapshotRef(c.stdout).seq).toBe(0)
    // The job keeps running unharmed: every rank goes on counting.
    await job.waitFor(keepRunningFirst, 20_000)
  }
  const t = await ompx(['checkpoint', '--term', String(job.pid)], { env: ENV, timeoutMs: 30_000 })
  expect(t.code).toBe(0)
  const { ref } = snapshotRef(t.stdout)
  const r = await job.done()
  expect(r.stderr).not.toMatch(/killed by signal|aborting/)
  expect(r.code).toBe(0)
  return { snap, ref, stdout: r.stdout }
}

const restart = (d: Dumped, extra: string[] = []) =>
  ompx(['restart', '--tag-output', ...dirArgs(d.snap), ...extra, d.ref], { env: ENV, timeoutMs: 60_000 })

describe.skipIf(reason !== null)('crs criu jobs', () => {
  test('C program, 4 ranks x 64 MiB on 2 nodes: checkpoint, --term, restart on the same and on other nodes', async () => {
    const argv = [COUNTER, '--mib', '64', '--ticks', '80', '--interval-ms', '40']
    const reference = referenceLines([COUNTER, '--mib', '64', '--ticks', '80', '--interval-ms', '0'])
    const d = await runAndTerm(argv, 4, 'n1:2,n2:2', /^\[[^\]]+,3\]<stdout>:tick 10 /m, /^\[[^\]]+,3\]<stdout>:tick 25 /m)
    const same = await restart(d)
    expect(same.stderr).toBe('')
    expect(same.code).toBe(0)
    expectContinued(d.stdout, same.stdout, 4, reference)
    const moved = await restart(d, ['-H', 'n3:2,n4:2', '--launcher', 'local', '--display-map'])
    expect(moved.code).toBe(0)
    expect(moved.stdout).toMatch(/n3/)
    expectContinued(d.stdout, moved.stdout.split('\n').filter((l) => l.startsWith('[')).join('\n'), 4, reference)
  })

  test('a bash loop, unmodified: --term and restart on other nodes', async () => {
    const reference = referenceLines(['bash', LOOP, '60', '0'])
    const d = await runAndTerm(['bash', LOOP, '60', '0.05'], 2, 'n1:1,n2:1', /^\[[^\]]+,1\]<stdout>:loop 10 /m, null)
    const r = await restart(d, ['-H', 'n3:1,n4:1', '--launcher', 'local'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expectContinued(d.stdout, r.stdout, 2, reference)
  })

  test('a Python script, unmodified: --term and restart on other nodes', async () => {
    const reference = referenceLines(['python3', PY, '60', '0', '0', '8'])
    const d = await runAndTerm(['python3', PY, '60', '0.05', '0', '8'], 2, 'n1:1,n2:1', /^\[[^\]]+,1\]<stdout>:py 10 /m, null)
    const r = await restart(d, ['-H', 'n3:1,n4:1', '--launcher', 'local'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expectContinued(d.stdout, r.stdout, 2, reference)
  })

  test('a damaged snapshot: a deleted image is refused by its checksum; an image missing from the metadata fails the restore naming rank, node and criu', async () => {
    const d = await runAndTerm([COUNTER, '--mib', '4', '--ticks', '400', '--interval-ms', '20'], 2, 'n1:1,n2:1', /^\[[^\]]+,1\]<stdout>:tick 5 /m, null)
    const rankDir = join(d.snap, d.ref, '0', 'rank_1')
    const image = readFileSync(join(rankDir, 'ompx-rank.json'), 'utf8').match(/"(core-\d+\.img)"/)![1]!
    unlinkSync(join(rankDir, image))
    const refused = await restart(d)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain(image)

    // Now make the metadata agree (as if the image had never been written): checksums pass, criu fails.
    const drop = (path: string) => {
      const j = JSON.parse(readFileSync(path, 'utf8'))
      const strip = (r: { files: { path: string }[] }) => (r.files = r.files.filter((f) => f.path !== image))
      if (j.seqs) for (const s of j.seqs) for (const r of s.ranks) if (r.rank === 1) strip(r)
      else if (j.files) strip(j)
      writeFileSync(path, JSON.stringify(j))
    }
    drop(join(rankDir, 'ompx-rank.json'))
    drop(join(d.snap, d.ref, 'global.json'))
    const failed = await restart(d)
    expect(failed.code).not.toBe(0)
    expect(failed.stderr).toMatch(/rank 1 on node n2: criu restore from \S+rank_1 failed: .*\(log: \S+restore\.log\)/)
  })
})
