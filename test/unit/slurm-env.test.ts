/**
 * Slurm without Slurm: hostlist expansion and compression, SLURM_TASKS_PER_NODE, the allocation
 * read from a batch job's environment, and the exact srun command line of the slurm launcher
 * (run against a stand-in `srun` that records what it got).
 */
import { describe, expect, test } from 'bun:test'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import slurmFactory, { launchSlurm, slurmAccepts, slurmRefusal, srunArgv, srunEnv } from '../../plugins/launcher/slurm'
import { bindMapValue, parseNodeAddresses } from '../../plugins/launcher/slurm-addresses'
import { ActionableError } from '../../src/errors'
import type { HostApi, LauncherPlugin } from '../../src/plugins/types'
import { allocationFromSlurm, compressNodelist, expandNodelist, parseTasksPerNode } from '../../src/runtime/slurm-env'
import { spawnRank } from '../../src/runtime/rank-process'

describe('nodelist expansion', () => {
  const cases: [string, string[]][] = [
    ['n1', ['n1']],
    ['n[01-04,07]', ['n01', 'n02', 'n03', 'n04', 'n07']],
    ['a1,b[2-3]', ['a1', 'b2', 'b3']],
    ['gpu-[1-2]-x', ['gpu-1-x', 'gpu-2-x']],
    ['n[8-11]', ['n8', 'n9', 'n10', 'n11']],
    ['n[098-101]', ['n098', 'n099', 'n100', 'n101']],
    ['r[1-2]n[1-2]', ['r1n1', 'r1n2', 'r2n1', 'r2n2']],
    ['c[1,3],login,d[5]', ['c1', 'c3', 'login', 'd5']],
    ['node-a.cluster,node-b.cluster', ['node-a.cluster', 'node-b.cluster']],
  ]
  for (const [list, hosts] of cases) {
    test(list, () => expect(expandNodelist(list)).toEqual(hosts))
  }

  test('bad expressions name the problem', () => {
    expect(() => expandNodelist('n[1-3', 'SLURM_JOB_NODELIST')).toThrow('SLURM_JOB_NODELIST: unclosed "["')
    expect(() => expandNodelist('n]1[')).toThrow('misplaced bracket')
    expect(() => expandNodelist('n[3-1]')).toThrow('runs backwards')
    expect(() => expandNodelist('n[a-b]')).toThrow('expected N or N-M')
    expect(() => expandNodelist('n[1-99999999]')).toThrow('too many hosts')
  })

  test('compression gives lists that expand back to the same hosts', () => {
    expect(compressNodelist(['n01', 'n02', 'n03', 'n04', 'n07'])).toBe('n[01-04,07]')
    expect(compressNodelist(['a1', 'b2', 'b3'])).toBe('a1,b[2-3]')
    expect(compressNodelist(['gpu-1-x', 'login'])).toBe('gpu-1-x,login')
    for (const list of ['n[098-101]', 'n[8-11]', 'x[1-3],y,x[7-9],z[01-02]', 'r[1-2]n[1-2]']) {
      const hosts = expandNodelist(list)
      expect(new Set(expandNodelist(compressNodelist(hosts)))).toEqual(new Set(hosts))
    }
  })
})

describe('SLURM_TASKS_PER_NODE and the allocation', () => {
  test('counts with repeats', () => {
    expect(parseTasksPerNode('2(x3),1')).toEqual([2, 2, 2, 1])
    expect(parseTasksPerNode('4')).toEqual([4])
    expect(parseTasksPerNode('16(x2),8,1(x2)')).toEqual([16, 16, 8, 1, 1])
    expect(() => parseTasksPerNode('2(3)')).toThrow('expected N or N(xM)')
  })

  test('allocation from a batch job environment', () => {
    const env = { SLURM_JOB_ID: '4711', SLURM_JOB_NODELIST: 'n[01-03],gpu1', SLURM_TASKS_PER_NODE: '2(x3),4' }
    expect(allocationFromSlurm(env)).toEqual({
      nodes: [
        { name: 'n01', slots: 2, slotsGiven: true },
        { name: 'n02', slots: 2, slotsGiven: true },
        { name: 'n03', slots: 2, slotsGiven: true },
        { name: 'gpu1', slots: 4, slotsGiven: true },
      ],
      source: 'Slurm job 4711',
    })
  })

  test('fallbacks: SLURM_JOB_CPUS_PER_NODE, then one slot; outside Slurm undefined', () => {
    const cpus = allocationFromSlurm({ SLURM_JOB_ID: '1', SLURM_NODELIST: 'a,b', SLURM_JOB_CPUS_PER_NODE: '8(x2)' })
    expect(cpus?.nodes.map((n) => n.slots)).toEqual([8, 8])
    expect(allocationFromSlurm({ SLURM_JOB_ID: '1', SLURM_JOB_NODELIST: 'a' })?.nodes).toEqual([{ name: 'a', slots: 1, slotsGiven: false }])
    expect(allocationFromSlurm({ SLURM_JOB_NODELIST: 'a' })).toBeUndefined()
    expect(allocationFromSlurm({})).toBeUndefined()
  })

  test('a count that does not match the nodelist is an actionable error', () => {
    const env = { SLURM_JOB_ID: '9', SLURM_JOB_NODELIST: 'n[1-3]', SLURM_TASKS_PER_NODE: '2(x2)' }
    expect(() => allocationFromSlurm(env)).toThrow(ActionableError)
    expect(() => allocationFromSlurm(env)).toThrow('counts 2 nodes but the nodelist has 3')
  })
})

describe('slurm launcher', () => {
  const req = {
    hnpUri: 'tcp://10.1.0.1:4000',
    ortedArgs: ['--mca', 'k', 'v w'],
    env: { OMPX_MCA_k: 'v w' },
  }

  test('the exact srun command line', () => {
    expect(srunArgv(req, ['n01', 'n02', 'n03', 'n07'], { agent: '/opt/ompx', extraArgs: ['--external-launcher'], killOnBadExit: true })).toEqual([
      'srun', '--nodes=4', '--ntasks=4', '--ntasks-per-node=1', '--nodelist=n[01-03,07]',
      '--kill-on-bad-exit=1', '--export=ALL', '--input=all', '--mpi=none', '--external-launcher',
      '/opt/ompx', 'orted', '--hnp', 'tcp://10.1.0.1:4000', '--node-from-env', 'SLURMD_NODENAME', '--mca', 'k', 'v w',
    ])
    expect(srunArgv(req, ['a'], { agent: 'x', extraArgs: [], killOnBadExit: false })).toContain('--kill-on-bad-exit=0')
    expect(srunEnv(req, { PATH: '/bin', SLURM_CPU_BIND: 'cores' })).toEqual({ PATH: '/bin', OMPX_MCA_k: 'v w', SLURM_CPU_BIND: 'none' })
  })

  test('node addresses from scontrol -o: a --bind-map of those that differ from the name', () => {
    const text = [
      'NodeName=n1 Arch=x86_64 CoresPerSocket=1 NodeAddr=127.0.1.1 NodeHostName=vm Version=22.05.8',
      'NodeName=n2 Arch=x86_64 NodeAddr=127.0.1.2 NodeHostName=vm Port=16819',
      'NodeName=c7 NodeAddr=c7 NodeHostName=c7',
      '',
    ].join('\n')
    const addrs = parseNodeAddresses(text)
    expect([...addrs]).toEqual([['n1', '127.0.1.1'], ['n2', '127.0.1.2'], ['c7', 'c7']])
    expect(bindMapValue(['n1', 'n2', 'c7', 'x'], addrs)).toBe('n1=127.0.1.1,n2=127.0.1.2')
    expect(bindMapValue(['c7'], addrs)).toBeUndefined()
    const argv = srunArgv(req, ['n1', 'n2'], { agent: 'x', extraArgs: [], killOnBadExit: true, bindMap: 'n1=127.0.1.1,n2=127.0.1.2' })
    expect(argv.slice(-7)).toEqual(['--node-from-env', 'SLURMD_NODENAME', '--bind-map', 'n1=127.0.1.1,n2=127.0.1.2', '--mca', 'k', 'v w'])
  })

  test('accepts only inside a Slurm job, with srun, for nodes of that job', async () => {
    const env = { SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'n[1-4]' }
    const nodes = (...names: string[]) => names.map((name) => ({ name, slots: 1 }))
    expect(slurmAccepts(nodes('n1', 'n3'), env, () => true)).toBe(true)
    expect(slurmAccepts(nodes('n1', 'n5'), env, () => true)).toBe(false)
    expect(slurmAccepts(nodes('n1'), env, () => false)).toBe(false)
    expect(slurmAccepts(nodes('n1'), { SLURM_JOB_NODELIST: 'n1' }, () => true)).toBe(false)
    expect(slurmAccepts(nodes('n1'), { SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'n[1' }, () => true)).toBe(false)
    expect(slurmRefusal(nodes('n1'), {}, () => true)).toContain('not inside a Slurm allocation (SLURM_JOB_ID is not set)')
    expect(slurmRefusal(nodes('n1', 'n5', 'n6'), env, () => true)).toBe('n5, n6 are not in Slurm job 5 (nodes n[1-4])')
    expect(slurmRefusal(nodes('n1'), env, () => false)).toContain('srun is not in PATH')
    expect(slurmRefusal(nodes('n1'), env, () => true)).toBeUndefined()
    const quiet = () => {}
    const host: HostApi = { version: 't', log: { info: quiet, warn: quiet, debug: quiet, error: quiet }, param: () => undefined, ActionableError, spawnRank }
    const p = (await slurmFactory(host)) as LauncherPlugin
    expect([p.name, p.priority]).toEqual(['slurm', 30])
  })

  test('launch: one srun, secret on its stdin, handles share it, srun stopped when all are released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ompx-srun-'))
    const oldPath = process.env.PATH
    try {
      writeFileSync(
        join(dir, 'srun'),
        `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/argv\necho "$SLURM_CPU_BIND $OMPX_MCA_k" > ${dir}/env\nread -r s\necho "$s" > ${dir}/secret\ncat >/dev/null\n`,
      )
      chmodSync(join(dir, 'srun'), 0o755)
      process.env.PATH = `${dir}:${oldPath}`
      const ds = await launchSlurm(
        { ...req, nodes: [{ name: 'n1', slots: 1 }, { name: 'n2', slots: 1 }], secret: 'feed', execPath: '/opt/ompx', tolerateNodeLoss: true },
        { agent: '/opt/ompx', extraArgs: [], bindMap: 'n1=10.0.0.1' },
      )
      expect(ds.map((d) => d.node)).toEqual(['n1', 'n2'])
      expect(ds[0]!.pid).toBe(ds[1]!.pid)
      for (let i = 0; i < 100 && Bun.file(join(dir, 'secret')).size === 0; i++) await Bun.sleep(20)
      expect(readFileSync(join(dir, 'secret'), 'utf8')).toBe('feed\n')
      expect(readFileSync(join(dir, 'env'), 'utf8')).toBe('none v w\n')
      expect(readFileSync(join(dir, 'argv'), 'utf8')).toContain('--nodelist=n[1-2]\n')
      // No launcher_slurm_kill_on_bad_exit given: a job that must survive a node loss gets 0.
      expect(readFileSync(join(dir, 'argv'), 'utf8')).toContain('--kill-on-bad-exit=0\n')
      expect(readFileSync(join(dir, 'argv'), 'utf8')).toContain('--bind-map\nn1=10.0.0.1\n')
      expect(readFileSync(join(dir, 'argv'), 'utf8')).not.toContain('feed')
      ds[0]!.kill()
      const still = await Promise.race([ds[0]!.exited.then(() => 'exited'), Bun.sleep(200).then(() => 'running')])
      expect(still).toBe('running')
      ds[1]!.kill()
      await ds[1]!.exited
    } finally {
      process.env.PATH = oldPath
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
