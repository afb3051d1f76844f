/**
 * MPI_Comm_spawn through PMI (docs/pmi.md "Spawn and the name service"). Debian's MPICH 4.0.2
 * (ch4:ucx) fails MPI_Comm_spawn before it says a word of PMI, even under mpiexec.hydra, so spawn
 * is driven here by a raw client writing the lines MPICH's PMI_Spawn_multiple writes
 * (test/fixtures/pmi-dpm.ts); the children run child.sh, which says what its environment tells
 * it, then speaks PMI. Children and parent meet through the name service where they must wait.
 */
import { $ } from 'bun'
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { guardLeftovers, lines, simHostfile, spawnOmpx } from '../helpers'
import { INIT, RAW, childLines, hnpFixture, runIn, spawnRequest, tagged, writeChild } from '../fixtures/pmi-dpm'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-spawn-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const run = runIn(tmp)
const CHILD = writeChild(tmp)
mkdirSync(join(tmp, 'sub'))

const env = (parent: string[], child: string[], extra: Record<string, string> = {}) => ({
  PMI_SCRIPT: JSON.stringify(parent),
  CHILD_SCRIPT: JSON.stringify(child),
  ...extra,
})

describe('MPI_Comm_spawn (PMI-1 mcmd=spawn)', () => {
  test('2 children: PMI_SPAWNED=1, their own size and ranks, the preput values; they report to the parent; output through ompx run', async () => {
    const parent = [
      INIT,
      spawnRequest([{ np: 2, exec: CHILD }], [['PARENT_ROOT_PORT_NAME', 'port-of-the-parent'], ['card', 'tag#0$a=b;c$'], ['spaced', 'a b']]),
      '<until-ok>cmd=lookup_name service=child-0',
      '<until-ok>cmd=lookup_name service=child-1',
      'cmd=publish_name service=parent-done port=bye',
      'cmd=finalize',
    ]
    // A value with = and ; goes intact; one with a space cannot travel on a PMI-1 line: refused, said why.
    const child = [INIT, 'cmd=get_appnum', 'cmd=get key=PARENT_ROOT_PORT_NAME', 'cmd=get key=card', 'cmd=get key=spaced', 'cmd=publish_name service=child-{rank} port=hello-from-{rank}', 'cmd=barrier_in', '<until-ok>cmd=lookup_name service=parent-done', 'cmd=finalize']
    const r = await run(['run', '--tag-output', '-np', '1', ...RAW], { env: env(parent, child) })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const pjob = tagged(r.stdout).find(([, , t]) => t.includes('spawn_result'))![0]
    expect(tagged(r.stdout).filter(([job]) => job === pjob).map(([, rank, t]) => `${rank} ${t}`)).toEqual([
      '0 0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      '0 0< cmd=spawn_result rc=0',
      '0 0< cmd=lookup_result rc=0 msg=success port=hello-from-0',
      '0 0< cmd=lookup_result rc=0 msg=success port=hello-from-1',
      '0 0< cmd=publish_result rc=0 msg=success',
      '0 0< cmd=finalize_ack',
    ])
    const host = (await $`hostname`.text()).trim()
    const kid = (rank: number) => [
      `${rank} ${rank}< cmd=appnum appnum=0`,
      `${rank} ${rank}< cmd=barrier_out`,
      `${rank} ${rank}< cmd=finalize_ack`,
      `${rank} ${rank}< cmd=get_result rc=-1 msg=the_value_holds_a_space_or_a_newline,_which_a_PMI-1_line_cannot_carry`,
      `${rank} ${rank}< cmd=get_result rc=0 msg=success value=port-of-the-parent`,
      `${rank} ${rank}< cmd=get_result rc=0 msg=success value=tag#0$a=b;c$`,
      `${rank} ${rank}< cmd=lookup_result rc=0 msg=success port=bye`,
      `${rank} ${rank}< cmd=publish_result rc=0 msg=success`,
      `${rank} ${rank}< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0`,
      `${rank} child rank=${rank} size=2 spawned=1 node=${host} cwd=${process.cwd()}`,
    ]
    expect(childLines(r.stdout, pjob)).toEqual([...kid(0), ...kid(1)])
  })

  test('a failing child ends the run with its status, named; the parent is ended too', async () => {
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=never-published', 'cmd=finalize']
    const r = await run(['run', '-np', '1', ...RAW], { env: env(parent, [], { CHILD_EXIT: '3' }) })
    expect(r.code).toBe(3)
    const err = lines(r.stderr)
    expect(err.some((l) => /^ompx run: job \S+ \(spawned by job \S+\): rank \d \(pid \d+\) on node \S+ exited with status 3; aborting the job/.test(l))).toBe(true)
    expect(err.some((l) => /^ompx run: job \S+ \(spawned by job \S+\) ended with status 3; aborting job \S+ with status 3 \(terminating 1 rank\)$/.test(l))).toBe(true)
  })

  test("the parent's --timeout ends its children too, errmgr_continue or not", async () => {
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=never-published', 'cmd=finalize']
    const extra = { CHILD_GATE: join(tmp, 'never-opened') }
    const r = await run(['run', '--timeout', '3', '--mca', 'errmgr_continue', '1', '-np', '1', ...RAW], { env: env(parent, [], extra) })
    expect(r.code).toBe(110)
    expect(lines(r.stdout).filter((l) => l.includes('child rank=')).length).toBe(2)
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(/^ompx run: job (\S+) exceeded its --timeout of 3 s; killing 1 rank$/),
      expect.stringMatching(/^ompx run: job \S+ \(spawned by job \S+\): job \S+ ended with status 110; aborting job \S+ with status 110 \(terminating 2 ranks\)$/),
    ])
  })

  test('SIGINT to ompx run ends the parent and its children, errmgr_continue or not', async () => {
    // The child waits for a gate nobody opens, the parent for a name nobody publishes.
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=never-published', 'cmd=finalize']
    const extra = { TMPDIR: tmp, CHILD_GATE: join(tmp, 'never-opened') }
    const p = spawnOmpx(['run', '--mca', 'errmgr_continue', '1', '--tag-output', '-np', '1', ...RAW], { env: { ...extra, ...env(parent, []) }, timeoutMs: 40_000 })
    await p.waitFor(/child rank=1 /, 20_000)
    p.signal('SIGINT')
    const r = await p.done()
    expect(r.code).not.toBe(0)
    expect(lines(r.stdout).filter((l) => l.includes('child rank=')).length).toBe(2)
  })

  test('spawn_multiple with info keys host, wdir and path: each app where it was asked, its appnum', async () => {
    const hf = simHostfile(join(tmp, 'hf2'), [['n1', 1], ['n2', 2]])
    const parent = [
      INIT,
      spawnRequest([
        { np: 2, exec: CHILD, info: [['host', 'n2'], ['wdir', join(tmp, 'sub')]] },
        { np: 1, exec: 'child.sh', info: [['path', join(tmp, 'bin')], ['host', 'n1']] },
      ]),
      'cmd=finalize',
    ]
    const r = await run(['run', '--tag-output', '--hostfile', hf, '-np', '1', ...RAW], { env: env(parent, [INIT, 'cmd=get_appnum', 'cmd=finalize']) })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const pjob = tagged(r.stdout).find(([, , t]) => t.includes('spawn_result'))![0]
    expect(tagged(r.stdout).filter(([job]) => job === pjob).map(([, , t]) => t)).toContain('0< cmd=spawn_result rc=0')
    expect(childLines(r.stdout, pjob).filter((l) => l.includes('appnum') || l.includes('child rank'))).toEqual([
      '0 0< cmd=appnum appnum=0',
      `0 child rank=0 size=3 spawned=1 node=n2 cwd=${join(tmp, 'sub')}`,
      '1 1< cmd=appnum appnum=0',
      `1 child rank=1 size=3 spawned=1 node=n2 cwd=${join(tmp, 'sub')}`,
      '2 2< cmd=appnum appnum=1',
      `2 child rank=2 size=3 spawned=1 node=n1 cwd=${process.cwd()}`,
    ])
  })

  test('a spawn that cannot start (no such program, a host outside the allocation, a bad request) is answered rc=-1 and said why', async () => {
    const parent = [
      INIT,
      spawnRequest([{ np: 1, exec: 'no-such-program-xyz' }]),
      spawnRequest([{ np: 1, exec: CHILD, info: [['host', 'elsewhere']] }]),
      '<raw>mcmd=spawn\nnprocs=0\nexecname=true\nendcmd\n',
      'cmd=finalize',
    ]
    const r = await run(['run', '-np', '1', ...RAW], { env: env(parent, []) })
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual([
      '0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      '0< cmd=spawn_result rc=-1 msg=program_"no-such-program-xyz"_was_not_found_in_PATH;_give_a_path_such_as_./no-such-program-xyz',
      expect.stringMatching(/^0< cmd=spawn_result rc=-1 msg=host_"elsewhere"_\(spawn_info_key_host\)_is_not_in_the_job's_allocation_\(\S+\)$/),
      '0< cmd=spawn_result rc=-1 msg=spawn_needs_nprocs=N_(N_>=_1)',
      '0< cmd=finalize_ack',
    ])
    // The node refuses a malformed request itself; what only the HNP knows is said on stderr too.
    expect(lines(r.stderr)).toEqual([
      'ompx run: rank 0: MPI_Comm_spawn failed: program "no-such-program-xyz" was not found in PATH; give a path such as ./no-such-program-xyz',
      expect.stringMatching(/^ompx run: rank 0: MPI_Comm_spawn failed: host "elsewhere" \(spawn info key host\) is not in the job's allocation \(\S+\)$/),
    ])
  })
})

describe('a job submitted to ompx hnp', () => {
  const hnp = hnpFixture(tmp)
  afterEach(() => hnp.stop())

  test('spawns: ompx ps shows the child naming its parent; the child output reaches the client', async () => {
    const pid = await hnp.start()
    const gate = join(tmp, 'gate-ps')
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=child-done', 'cmd=finalize']
    const child = [INIT, 'cmd=barrier_in', 'cmd=publish_name service=child-done port=x', 'cmd=finalize']
    const p = spawnOmpx(['run', '--hnp', pid, '--tag-output', '-np', '1', ...RAW], { env: { TMPDIR: tmp, ...env(parent, child, { CHILD_GATE: gate }) }, timeoutMs: 40_000 })
    await p.waitFor(/child rank=1 /, 20_000)
    const ps = await run(['ps', pid, '--json'])
    const jobs = (JSON.parse(ps.stdout) as { jobs: { jobid: string; parent?: string; procs: unknown[] }[] }).jobs
    expect(jobs).toHaveLength(2)
    const [first, second] = jobs
    expect(first!.parent).toBeUndefined()
    expect(second!.parent).toBe(first!.jobid)
    expect(second!.procs).toHaveLength(2)
    const text = await run(['ps', pid])
    expect(text.stdout).toContain(`(spawned by job ${first!.jobid})`)
    writeFileSync(gate, '')
    const r = await p.done()
    expect(r.code).toBe(0)
    // Both children publish the same name: one gets it, the other is refused (which one is a race).
    const published = childLines(r.stdout, first!.jobid).filter((l) => l.includes('publish_result'))
    expect(published.map((l) => l.replace(/^\d \d< /, '')).sort()).toEqual(['cmd=publish_result rc=-1 msg=key_already_present', 'cmd=publish_result rc=0 msg=success'])
  })
})
