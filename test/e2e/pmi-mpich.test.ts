/**
 * Unmodified MPICH programs under `ompx run` (docs/pmi.md): Debian's MPICH (PMI-1 "simple"
 * client) finds its peers through the nodes' PMI servers, on one node and across simulated
 * nodes, in fd and port mode; MPI_Abort and a rank killed mid-barrier end the job; Slurm's
 * libpmi2 speaks PMI-2 on the same connection; bad clients get error lines, not hangs. Spawn and
 * the name service are test/e2e/pmi-spawn.test.ts and pmi-names.test.ts.
 * The programs are built here with mpicc.mpich and cc -lpmi2 (scripts/install-test-deps.sh
 * installs both; a missing one fails the file with the reason).
 */
import { $ } from 'bun'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, lines, simHostfile, spawnOmpx, ompx, type RunOpts } from '../helpers'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-pmi-'))
const MPI = join(tmp, 'mpi-prog')
/** The same source built a second time: the second program of the MPMD test. */
const MPI2 = join(tmp, 'mpi-prog-2')
const PMI2 = join(tmp, 'pmi2-client')
const RAW = ['bun', join(FIXTURES, 'pmi-raw.ts')]
const run = (args: string[], o: RunOpts = {}) => ompx(args, { timeoutMs: 45_000, ...o, env: { TMPDIR: tmp, ...o.env } })

beforeAll(async () => {
  if (!Bun.which('mpicc.mpich')) throw new Error('mpicc.mpich not found: run scripts/install-test-deps.sh (Debian packages mpich libmpich-dev)')
  await $`mpicc.mpich -O2 -o ${MPI} ${join(FIXTURES, 'mpi-prog.c')}`
  await $`mpicc.mpich -O0 -o ${MPI2} ${join(FIXTURES, 'mpi-prog.c')}`
  await $`cc -O2 -o ${PMI2} ${join(FIXTURES, 'pmi2-client.c')} -lpmi2`.catch(() => {
    throw new Error('cannot build the PMI-2 client with -lpmi2: run scripts/install-test-deps.sh (Debian package libpmi2-0-dev)')
  })
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const sorted = (text: string, prefix: string) => lines(text).filter((l) => l.startsWith(prefix)).sort()

describe('MPICH programs', () => {
  test('hello: every rank knows its rank, the size and its processor name', async () => {
    const r = await run(['run', '--oversubscribe', '-np', '4', MPI, 'hello'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const host = (await $`hostname`.text()).trim()
    expect(sorted(r.stdout, 'hello')).toEqual([0, 1, 2, 3].map((i) => `hello ${i} of 4 on ${host}`))
  })

  test('allreduce across 3 simulated nodes (2 ranks each)', async () => {
    const hf = simHostfile(join(tmp, 'hf3'), [['n1', 2], ['n2', 2], ['n3', 2]])
    const r = await run(['run', '--hostfile', hf, '-np', '6', MPI, 'allreduce'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(sorted(r.stdout, 'allreduce')).toEqual([0, 1, 2, 3, 4, 5].map((i) => `allreduce ${i} sum 15 ok`))
  })

  test('point-to-point ring, ranks spread round-robin over 2 nodes, port mode', async () => {
    const hf = simHostfile(join(tmp, 'hf2'), [['n1', 3], ['n2', 2]])
    const r = await run(['run', '--hostfile', hf, '--map-by', 'node', '--mca', 'pmi_mode', 'port', '-np', '5', MPI, 'ring'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual(['ring token 10'])
  })

  test('MPMD: two programs, MPI_APPNUM (and PMI_APPNUM) per app context', async () => {
    const r = await run(['run', '--oversubscribe', '-np', '2', MPI, 'appnum', 'first', ':', '-np', '2', MPI2, 'appnum', 'second'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(sorted(r.stdout, 'appnum')).toEqual(['appnum 0 first 0', 'appnum 1 first 0', 'appnum 2 second 1', 'appnum 3 second 1'])
    const env = await run(['run', '-np', '1', 'sh', '-c', 'echo $PMI_RANK $PMI_SIZE $PMI_APPNUM $PMI_FD', ':', '-np', '1', 'sh', '-c', 'echo $PMI_RANK $PMI_SIZE $PMI_APPNUM $PMI_FD'])
    expect(lines(env.stdout).sort()).toEqual(['0 2 0 3', '1 2 1 3'])
  })
})

describe('ending a job', () => {
  test('MPI_Abort(..., 7) from rank 1: the job exits 7 naming rank and code, nothing is left', async () => {
    const r = await run(['run', '--oversubscribe', '-np', '3', MPI, 'abort'])
    expect(r.code).toBe(7)
    expect(r.stderr).toContain('rank 1 called MPI_Abort (PMI abort) with exit code 7; aborting the job with status 7')
  })

  test('a rank killed while the others wait in a barrier ends the job', async () => {
    const p = spawnOmpx(['run', '--oversubscribe', '-np', '3', MPI, 'hang'], { timeoutMs: 45_000, env: { TMPDIR: tmp } })
    const line = await p.waitFor(/^hanging 1 pid \d+/, 20_000)
    process.kill(Number(line.split(' ').at(-1)), 'SIGKILL')
    const r = await p.done()
    expect(r.code).toBe(137)
    expect(r.stderr).toContain('rank 1 (pid')
    expect(r.stderr).toContain('was killed by signal 9 (SIGKILL); aborting the job')
  })
})

describe('MPI libraries ompx does not serve', () => {
  test("a program linked with Open MPI's libmpi.so.40 gets one warning line at launch; an MPICH one none", async () => {
    const prog = join(tmp, 'ompi-prog')
    const src = join(tmp, 'ompi-prog.c')
    await Bun.write(src, 'int MPI_Init(int *, char ***);\nint MPI_Finalize(void);\nint main(int c, char **v) { MPI_Init(&c, &v); MPI_Finalize(); return 0; }\n')
    // Open MPI's runtime library comes with openmpi-bin (scripts/install-peers.sh); no headers needed.
    await $`cc -o ${prog} ${src} -l:libmpi.so.40`
    const r = await run(['run', '--oversubscribe', '-np', '2', prog])
    expect(lines(r.stderr).filter((l) => l.includes('warning'))).toEqual([
      "ompx run: warning: " + prog + " is linked with Open MPI's libmpi.so.40, which needs a PMIx server; ompx serves PMI-1/PMI-2 (MPICH) only, so each rank would run as a singleton of size 1: build it with mpicc.mpich, or run it with Open MPI's mpirun",
    ])
    const mpich = await run(['run', '-np', '1', MPI, 'hello'])
    expect(mpich.stderr).toBe('')
  })
})

describe('PMI-2 (Slurm libpmi2)', () => {
  test('fullinit, put, fence, get of every rank, PMI_process_mapping, across 2 nodes', async () => {
    const hf = simHostfile(join(tmp, 'hf-pmi2'), [['n1', 2], ['n2', 1]])
    const r = await run(['run', '--hostfile', hf, '-np', '3', PMI2])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(sorted(r.stdout, 'pmi2')).toEqual([0, 1, 2].map((i) => `pmi2 rank ${i} of 3 appnum 0 spawned 0 kvs ok mapping (vector,(0,1,2),(1,1,1))`))
  })
})

describe('PMI-1 values', () => {
  test('a value keeps its = and ; through put, fence and get (MPICH reads up to the next space)', async () => {
    const script = ['cmd=init pmi_version=1 pmi_subversion=1', 'cmd=put key=card-{rank} value=tag#{rank}$a=b;c=;', 'cmd=barrier_in', 'cmd=get key=card-0', 'cmd=get key=card-1', 'cmd=finalize']
    const r = await run(['run', '--oversubscribe', '-np', '2', ...RAW], { env: { PMI_SCRIPT: JSON.stringify(script) } })
    expect(r.code).toBe(0)
    for (const rank of [0, 1]) {
      expect(lines(r.stdout).filter((l) => l.startsWith(`${rank}< cmd=get_result`))).toEqual([
        `${rank}< cmd=get_result rc=0 msg=success value=tag#0$a=b;c=;`,
        `${rank}< cmd=get_result rc=0 msg=success value=tag#1$a=b;c=;`,
      ])
    }
  })
})

describe('bad clients get an error line', () => {
  const raw = (script: string[], o: { port?: boolean; env?: Record<string, string> } = {}) =>
    run(['run', ...(o.port ? ['--mca', 'pmi_mode', 'port'] : []), '-np', '1', ...RAW], { env: { PMI_SCRIPT: JSON.stringify(script), ...o.env } })

  test('unknown and malformed commands, a second init, oversize key and value, put after finalize', async () => {
    const r = await raw([
      'cmd=init pmi_version=1 pmi_subversion=1',
      'cmd=init pmi_version=1 pmi_subversion=1',
      'cmd=get_maxes',
      'cmd=no_such_command',
      'this is not a PMI line',
      `cmd=put key=${'k'.repeat(65)} value=v`,
      `cmd=put key=k value=${'v'.repeat(1025)}`,
      'cmd=get key=missing',
      'cmd=finalize',
      'cmd=put key=k value=v',
    ])
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual([
      '0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      '0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=-1 msg=a_second_init_on_this_connection',
      '0< cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024',
      '0< cmd=error rc=-1 msg=unknown_PMI_command_no_such_command',
      '0< cmd=error rc=-1 msg=malformed_PMI_message:_"this"_is_not_key=value',
      '0< cmd=put_result rc=-1 msg=the_key_is_longer_than_keylen_max_64',
      '0< cmd=put_result rc=-1 msg=the_value_is_longer_than_vallen_max_1024',
      '0< cmd=get_result rc=-1 msg=key_missing_not_found',
      '0< cmd=finalize_ack',
      '0< cmd=put_result rc=-1 msg=put_after_finalize',
    ])
  })

  test('a line longer than the limit: an error line, then the connection is closed', async () => {
    const r = await raw([`<raw>cmd=put key=k value=${'x'.repeat(5000)}`, 'cmd=get_maxes'])
    expect(lines(r.stdout)).toEqual(['0< cmd=error rc=-1 msg=a_line_longer_than_4096_bytes', '0< <closed>'])
  })

  test('port mode: a PMI_ID that was not issued is refused', async () => {
    const r = await raw(['cmd=get_maxes'], { port: true, env: { OVERRIDE_PMI_ID: '12345' } })
    expect(lines(r.stdout)[0]).toBe('0< cmd=error rc=-1 msg=initack_with_a_pmiid_this_node_did_not_issue_(or_that_is_already_in_use)')
  })

  test('port mode: the issued PMI_ID gets size, rank and the session', async () => {
    const r = await raw(['cmd=init pmi_version=1 pmi_subversion=1', 'cmd=get_universe_size', 'cmd=finalize'], { port: true })
    expect(lines(r.stdout)).toEqual([
      '0< cmd=initack',
      '0< cmd=set size=1',
      '0< cmd=set rank=0',
      '0< cmd=set debug=0',
      '0< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0',
      '0< cmd=universe_size size=1',
      '0< cmd=finalize_ack',
    ])
  })

  test('PMI-2 framing: a bad length prefix is an error, then the connection is closed', async () => {
    const r = await raw(['cmd=init pmi_version=2 pmi_subversion=0', '<raw>xx    cmd=fullinit;'])
    const body = 'cmd=error;rc=-1;msg=a PMI-2 message without a valid 6-character length;'
    expect(lines(r.stdout)).toEqual(['0< cmd=response_to_init pmi_version=2 pmi_subversion=0 rc=0', `0< ${String(body.length).padEnd(6)}${body}`, '0< <closed>'])
  })
})
