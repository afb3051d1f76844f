/**
 * MPI_Comm_spawn and the name service (docs/pmi.md "Spawn and the name service"). Debian's
 * MPICH 4.0.2 (ch4:ucx) fails MPI_Comm_spawn, MPI_Open_port and connect/accept before it says a
 * word of PMI, even under mpiexec.hydra, so spawn is driven here by a raw client speaking the
 * wire lines (test/fixtures/pmi-raw.ts) as MPICH's PMI_Spawn_multiple writes them; the names are
 * also used from a real MPICH program (MPI_Publish_name / MPI_Lookup_name), between two jobs of
 * one `ompx hnp`. Children run test/fixtures-like `child.sh`, written here: it says what its
 * environment tells it, then speaks PMI with the script in $CHILD_SCRIPT.
 */
import { $ } from 'bun'
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, isAlive, lines, ompx, simHostfile, spawnOmpx, type RunOpts } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-dpm-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const RAW = ['bun', join(FIXTURES, 'pmi-raw.ts')]
const CHILD = join(tmp, 'bin', 'child.sh')
const NAMES = join(tmp, 'mpi-names')
const run = (args: string[], o: RunOpts = {}) => ompx(args, { timeoutMs: 45_000, ...o, env: { TMPDIR: tmp, ...o.env } })
const INIT = 'cmd=init pmi_version=1 pmi_subversion=1'

beforeAll(async () => {
  mkdirSync(join(tmp, 'bin'))
  mkdirSync(join(tmp, 'sub'))
  writeFileSync(
    CHILD,
    [
      '#!/bin/sh',
      'echo "child rank=$PMI_RANK size=$PMI_SIZE spawned=$PMI_SPAWNED node=$OMPX_NODE cwd=$(pwd)"',
      '[ -n "$CHILD_EXIT" ] && exit "$CHILD_EXIT"',
      '[ -n "$CHILD_GATE" ] && while [ ! -e "$CHILD_GATE" ]; do sleep 0.05; done',
      `PMI_SCRIPT="$CHILD_SCRIPT" exec ${RAW.join(' ')}`,
      '',
    ].join('\n'),
  )
  chmodSync(CHILD, 0o755)
  if (!Bun.which('mpicc.mpich')) throw new Error('mpicc.mpich not found: run scripts/install-test-deps.sh (Debian packages mpich libmpich-dev)')
  await $`mpicc.mpich -O2 -o ${NAMES} ${join(FIXTURES, 'mpi-names.c')}`
})

interface SpawnApp {
  np: number
  exec: string
  args?: string[]
  info?: [string, string][]
}

/** One PMI_Spawn_multiple request, line by line as MPICH's simple client writes it. */
function spawnRequest(apps: SpawnApp[], preput: [string, string][] = [['PARENT_ROOT_PORT_NAME', 'port-of-the-parent']]): string {
  const out: string[] = []
  apps.forEach((a, i) => {
    out.push('mcmd=spawn', `nprocs=${a.np}`, `execname=${a.exec}`, `totspawns=${apps.length}`, `spawnssofar=${i + 1}`)
    ;(a.args ?? []).forEach((arg, k) => out.push(`arg${k + 1}=${arg}`))
    out.push(`argcnt=${a.args?.length ?? 0}`, `preput_num=${preput.length}`)
    preput.forEach(([k, v], n) => out.push(`preput_key_${n}=${k}`, `preput_val_${n}=${v}`))
    out.push(`info_num=${a.info?.length ?? 0}`)
    ;(a.info ?? []).forEach(([k, v], n) => out.push(`info_key_${n}=${k}`, `info_val_${n}=${v}`))
    out.push('endcmd')
  })
  return `<raw>${out.join('\n')}\n`
}

/** `[jobid,rank]<stdout>:text` lines of a --tag-output run, as [jobid, rank, text]. */
function tagged(stdout: string): [string, number, string][] {
  return lines(stdout).flatMap((l) => {
    const m = /^\[([^,\]]+),(\d+)\]<std(?:out|err)>:(.*)$/.exec(l)
    return m ? [[m[1]!, Number(m[2]), m[3]!] as [string, number, string]] : []
  })
}

/** What the children (every job but `parent`) printed, sorted. */
function childLines(stdout: string, parent: string): string[] {
  return tagged(stdout)
    .filter(([job]) => job !== parent)
    .map(([, rank, text]) => `${rank} ${text}`)
    .sort()
}

const env = (parent: string[], child: string[], extra: Record<string, string> = {}) => ({
  PMI_SCRIPT: JSON.stringify(parent),
  CHILD_SCRIPT: JSON.stringify(child),
  ...extra,
})

describe('MPI_Comm_spawn (PMI-1 mcmd=spawn)', () => {
  test('2 children: PMI_SPAWNED=1, their own size and ranks, the parent port; they report to the parent; output through ompx run', async () => {
    const parent = [
      INIT,
      spawnRequest([{ np: 2, exec: CHILD }]),
      '<until-ok>cmd=lookup_name service=child-0',
      '<until-ok>cmd=lookup_name service=child-1',
      'cmd=publish_name service=parent-done port=bye',
      'cmd=finalize',
    ]
    const child = [
      INIT,
      'cmd=get_appnum',
      'cmd=get key=PARENT_ROOT_PORT_NAME',
      'cmd=publish_name service=child-{rank} port=hello-from-{rank}',
      'cmd=barrier_in',
      '<until-ok>cmd=lookup_name service=parent-done',
      'cmd=finalize',
    ]
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
    const kids = childLines(r.stdout, pjob)
    const host = (await $`hostname`.text()).trim()
    expect(kids).toEqual([
      '0 0< cmd=appnum appnum=0',
      '0 0< cmd=barrier_out',
      '0 0< cmd=finalize_ack',
      '0 0< cmd=get_result rc=0 msg=success value=port-of-the-parent',
      '0 0< cmd=lookup_result rc=0 msg=success port=bye',
      '0 0< cmd=publish_result rc=0 msg=success',
      '0 0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      `0 child rank=0 size=2 spawned=1 node=${host} cwd=${process.cwd()}`,
      '1 1< cmd=appnum appnum=0',
      '1 1< cmd=barrier_out',
      '1 1< cmd=finalize_ack',
      '1 1< cmd=get_result rc=0 msg=success value=port-of-the-parent',
      '1 1< cmd=lookup_result rc=0 msg=success port=bye',
      '1 1< cmd=publish_result rc=0 msg=success',
      '1 1< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      `1 child rank=1 size=2 spawned=1 node=${host} cwd=${process.cwd()}`,
    ])
  })

  test('a failing child ends the run with its status, named; the parent is ended too', async () => {
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=never-published', 'cmd=finalize']
    const r = await run(['run', '-np', '1', ...RAW], { env: env(parent, [], { CHILD_EXIT: '3' }) })
    expect(r.code).toBe(3)
    const err = lines(r.stderr)
    expect(err.some((l) => /^ompx run: job \S+ \(spawned by job \S+\): rank \d \(pid \d+\) on node \S+ exited with status 3; aborting the job/.test(l))).toBe(true)
    expect(err.some((l) => /^ompx run: job \S+ \(spawned by job \S+\) ended with status 3; aborting job \S+ with status 3 \(terminating 1 rank\)$/.test(l))).toBe(true)
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

  test('a spawn that cannot start (no such program, a host outside the allocation) is answered rc=-1 and said why', async () => {
    const parent = [
      INIT,
      spawnRequest([{ np: 1, exec: 'no-such-program-xyz' }]),
      spawnRequest([{ np: 1, exec: CHILD, info: [['host', 'elsewhere']] }]),
      'cmd=finalize',
    ]
    const r = await run(['run', '-np', '1', ...RAW], { env: env(parent, []) })
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual([
      '0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      '0< cmd=spawn_result rc=-1 msg=program_"no-such-program-xyz"_was_not_found_in_PATH_give_a_path_such_as_./no-such-program-xyz',
      expect.stringMatching(/^0< cmd=spawn_result rc=-1 msg=host_"elsewhere"_\(spawn_info_key_host\)_is_not_in_the_job's_allocation_\(\S+\)$/),
      '0< cmd=finalize_ack',
    ])
    expect(lines(r.stderr)).toEqual([
      'ompx run: rank 0: MPI_Comm_spawn failed: program "no-such-program-xyz" was not found in PATH; give a path such as ./no-such-program-xyz',
      expect.stringMatching(/^ompx run: rank 0: MPI_Comm_spawn failed: host "elsewhere" \(spawn info key host\) is not in the job's allocation \(\S+\)$/),
    ])
  })
})

describe('the name service within one run', () => {
  test('publish, lookup, duplicate publish, unpublish, lookup of a missing name; PMI-2 too', async () => {
    const pmi2 = (body: string) => `<raw>${String(Buffer.byteLength(body)).padEnd(6)}${body}`
    const r = await run(['run', '-np', '1', ...RAW, ':', '-np', '1', ...RAW], {
      env: {
        PMI_SCRIPT: JSON.stringify([
          INIT,
          'cmd=barrier_in',
          'cmd=publish_name service=svc-{rank} port=tcp://h:{rank}',
          'cmd=publish_name service=svc-{rank} port=again',
          'cmd=barrier_in',
          'cmd=lookup_name service=svc-0',
          'cmd=lookup_name service=svc-1',
          'cmd=unpublish_name service=svc-{rank}',
          'cmd=unpublish_name service=svc-{rank}',
          'cmd=lookup_name service=svc-{rank}',
          'cmd=lookup_name',
          'cmd=finalize',
        ]),
      },
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    for (const rank of [0, 1]) {
      expect(lines(r.stdout).filter((l) => l.startsWith(`${rank}<`))).toEqual([
        `${rank}< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0`,
        `${rank}< cmd=barrier_out`,
        `${rank}< cmd=publish_result rc=0 msg=success`,
        `${rank}< cmd=publish_result rc=-1 msg=key_already_present`,
        `${rank}< cmd=barrier_out`,
        `${rank}< cmd=lookup_result rc=0 msg=success port=tcp://h:0`,
        `${rank}< cmd=lookup_result rc=0 msg=success port=tcp://h:1`,
        `${rank}< cmd=unpublish_result rc=0 msg=success`,
        `${rank}< cmd=unpublish_result rc=-1 msg=service_not_found`,
        `${rank}< cmd=lookup_result rc=-1 msg=service_not_found`,
        `${rank}< cmd=lookup_result rc=-1 msg=lookup_name_needs_service_`,
        `${rank}< cmd=finalize_ack`,
      ])
    }
    const two = await run(['run', '-np', '1', ...RAW], {
      env: {
        PMI_SCRIPT: JSON.stringify([
          'cmd=init pmi_version=2 pmi_subversion=0',
          pmi2('cmd=fullinit;pmirank=0;'),
          pmi2('cmd=name-publish;name=svc2;port=a;;b;'),
          pmi2('cmd=name-lookup;name=svc2;'),
          pmi2('cmd=name-unpublish;name=svc2;'),
          pmi2('cmd=name-lookup;name=svc2;'),
          pmi2('cmd=finalize;'),
        ]),
      },
    })
    expect(two.stderr).toBe('')
    expect(lines(two.stdout).filter((l) => l.includes('cmd=name-'))).toEqual([
      expect.stringMatching(/^0< \d+ +cmd=name-publish-response;rc=0;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-lookup-response;rc=0;port=a;;b;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-unpublish-response;rc=0;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-lookup-response;rc=-1;errmsg=service_not_found;$/),
    ])
  })
})

describe('jobs of one ompx hnp', () => {
  const hnpEnv = { TMPDIR: tmp }
  let hnpPid = 0
  afterEach(async () => {
    if (hnpPid && isAlive(hnpPid)) await run(['hnp', '--stop', String(hnpPid)]).catch(() => {})
    hnpPid = 0
  })
  async function startHnp(): Promise<string> {
    const r = await run(['hnp', '--hostfile', simHostfile(join(tmp, 'hf-hnp'), [['n1', 2], ['n2', 2]]), '--daemonize'], { env: hnpEnv })
    expect(r.code).toBe(0)
    hnpPid = Number(/^ompx hnp: pid (\d+)/.exec(lines(r.stdout)[0] ?? '')![1])
    return String(hnpPid)
  }

  test('MPICH programs: MPI_Publish_name in one job, MPI_Lookup_name in another; the name goes when its job ends', async () => {
    const pid = await startHnp()
    const gate = join(tmp, 'gate-names')
    const a = spawnOmpx(['run', '--hnp', pid, '-np', '1', NAMES, 'publish', 'ompx-svc', 'tcp://10.0.0.1:4242', gate], { env: hnpEnv, timeoutMs: 40_000 })
    await a.waitFor(/^published ompx-svc ok$/, 20_000)
    const b = await run(['run', '--hnp', pid, '-np', '1', NAMES, 'lookup', 'ompx-svc'])
    expect(b.code).toBe(0)
    expect(lines(b.stdout)).toEqual(['lookup ompx-svc ok tcp://10.0.0.1:4242'])
    // Raw PMI from a third job: the name is taken, and it is not this job's to unpublish.
    const c = await run(['run', '--hnp', pid, '-np', '1', ...RAW], {
      env: { PMI_SCRIPT: JSON.stringify([INIT, 'cmd=publish_name service=ompx-svc port=mine', 'cmd=unpublish_name service=ompx-svc', 'cmd=finalize']) },
    })
    expect(lines(c.stdout).slice(1, 3)).toEqual([
      expect.stringMatching(/^0< cmd=publish_result rc=-1 msg=key_already_present_\(published_by_job_\S+\)$/),
      expect.stringMatching(/^0< cmd=unpublish_result rc=-1 msg=service_published_by_job_\S+$/),
    ])
    writeFileSync(gate, '')
    const done = await a.done()
    expect(done.code).toBe(0)
    expect(lines(done.stdout)).toEqual(['published ompx-svc ok', 'unpublished ompx-svc ok'])
    // A job that publishes and ends without unpublishing: its name goes with it.
    const d = await run(['run', '--hnp', pid, '-np', '1', ...RAW], { env: { PMI_SCRIPT: JSON.stringify([INIT, 'cmd=publish_name service=left-behind port=p', 'cmd=finalize']) } })
    expect(d.code).toBe(0)
    const e = await run(['run', '--hnp', pid, '-np', '1', NAMES, 'lookup', 'left-behind'])
    expect(lines(e.stdout)).toEqual(['lookup left-behind failed '])
  })

  test('a submitted job spawns: ompx ps shows the child naming its parent; the child output reaches the client', async () => {
    const pid = await startHnp()
    const gate = join(tmp, 'gate-ps')
    const parent = [INIT, spawnRequest([{ np: 2, exec: CHILD }]), '<until-ok>cmd=lookup_name service=child-done', 'cmd=finalize']
    const child = [INIT, 'cmd=barrier_in', 'cmd=publish_name service=child-done port=x', 'cmd=finalize']
    const p = spawnOmpx(['run', '--hnp', pid, '--tag-output', '-np', '1', ...RAW], { env: { ...hnpEnv, ...env(parent, child, { CHILD_GATE: gate }) }, timeoutMs: 40_000 })
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
