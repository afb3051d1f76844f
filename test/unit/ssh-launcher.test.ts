/**
 * The ssh launcher's command lines (agent words, option order, remote quoting, preload scripts)
 * and its launch loop, with a stand-in "ssh" that runs the remote command locally, so no sshd is
 * needed here (test/e2e/ssh-launcher.test.ts covers real ssh).
 */
import { describe, expect, test } from 'bun:test'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sshFactory, { launchSsh, preloadScripts, remoteCommand, SSH_READY, sshArgv, sshOptions } from '../../plugins/launcher/ssh'
import { ActionableError } from '../../src/errors'
import type { DaemonLaunchRequest, HostApi, LauncherPlugin } from '../../src/plugins/types'
import { mapBounded, ortedArgv } from '../../plugins/launcher/common'
import { shellQuote, splitWords } from '../../src/util/shell'
import { spawnRank } from '../../src/runtime/rank-process'

const quiet = () => {}
const hostWith = (params: Record<string, string>): HostApi => ({
  version: 'test',
  log: { info: quiet, warn: quiet, debug: quiet, error: quiet },
  param: (k) => params[k],
  ActionableError,
  spawnRank,
})
const req = (extra: Partial<DaemonLaunchRequest> = {}): DaemonLaunchRequest => ({
  nodes: [{ name: 'n1', slots: 2 }],
  hnpUri: 'tcp://10.0.0.1:4000',
  secret: 'c0ffee',
  execPath: '/opt/ompx/bin/ompx',
  ortedArgs: [],
  env: {},
  ...extra,
})

describe('words and quoting', () => {
  test('splitWords reads an agent string as sh would', () => {
    expect(splitWords('ssh -p 2222 -i key')).toEqual(['ssh', '-p', '2222', '-i', 'key'])
    expect(splitWords(` ssh  -i "my key" -o 'A=b c' x\\ y ""`)).toEqual(['ssh', '-i', 'my key', '-o', 'A=b c', 'x y', ''])
    expect(splitWords('"a\\"b"')).toEqual(['a"b'])
    expect(splitWords('')).toEqual([])
    expect(() => splitWords('ssh -i "unclosed')).toThrow('unbalanced')
  })

  test('shellQuote leaves plain words alone and single-quotes the rest', () => {
    expect(shellQuote('/usr/bin/ompx')).toBe('/usr/bin/ompx')
    expect(shellQuote('tcp://10.0.0.1:4000')).toBe('tcp://10.0.0.1:4000')
    expect(shellQuote('a b')).toBe(`'a b'`)
    expect(shellQuote(`it's`)).toBe(`'it'\\''s'`)
    expect(shellQuote('')).toBe(`''`)
  })

  test('the remote command survives a POSIX shell word for word', () => {
    const words = ['a b', `it's`, '$HOME', '`id`', '"q"', '\\', 'ü', '', '; rm -rf /', '*']
    const cmd = remoteCommand(['printf', '[%s]\\n', ...words], { OMPX_MCA_x: `v "w" $x` })
    const r = Bun.spawnSync(['sh', '-c', cmd.replace(/^echo \S+; exec /, 'exec ')])
    expect(r.stdout.toString()).toBe(words.map((w) => `[${w}]\n`).join(''))
    const withEnv = remoteCommand(['sh', '-c', 'echo "$OMPX_MCA_x"'], { OMPX_MCA_x: `v "w" $x` })
    const out = Bun.spawnSync(['sh', '-c', withEnv]).stdout.toString()
    expect(out).toBe(`${SSH_READY}\nv "w" $x\n`)
  })

  test('variables with impossible names are refused', () => {
    expect(() => remoteCommand(['x'], { 'A=B': '1' })).toThrow('cannot pass variable')
  })
})

describe('command lines', () => {
  test('orted argv: node name, bind address, extra args', () => {
    const r = req({ ortedArgs: ['--mca', 'k', 'v'] })
    expect(ortedArgv('/x/ompx', r, { name: 'n1', slots: 1 })).toEqual(['/x/ompx', 'orted', '--hnp', 'tcp://10.0.0.1:4000', '--node', 'n1', '--mca', 'k', 'v'])
    expect(ortedArgv('/x/ompx', r, { name: 'n1', slots: 1, address: '10.0.0.7' })).toContain('--bind')
    expect(ortedArgv('/x/ompx', r, { nodeFromEnv: 'SLURMD_NODENAME' }).slice(4, 6)).toEqual(['--node-from-env', 'SLURMD_NODENAME'])
  })

  test('ssh argv: agent with options, user args, then ours, host, command', () => {
    const opts = sshOptions(hostWith({ launcher_ssh_agent: `ssh -p 2222 -i "/k/my key"`, launcher_ssh_args: '-o StrictHostKeyChecking=accept-new' }))
    expect(sshArgv(opts, 'n1', 'CMD')).toEqual([
      'ssh', '-p', '2222', '-i', '/k/my key',
      '-o', 'StrictHostKeyChecking=accept-new',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
      'n1', 'CMD',
    ])
    // Not ssh: no -o options it may not know.
    expect(sshArgv({ agent: ['rsh'], extraArgs: [] }, 'n1', 'CMD')).toEqual(['rsh', 'n1', 'CMD'])
    expect(() => sshArgv(opts, '-oProxyCommand=evil', 'CMD')).toThrow('ssh would read as an option')
  })

  test('the full remote command for a node', () => {
    const r = req({ ortedArgs: ['--mca', 'a', 'b c'], env: { OMPX_MCA_k: 'v' } })
    const cmd = remoteCommand(ortedArgv('/opt/ompx/bin/ompx', r, r.nodes[0]!), r.env)
    expect(cmd).toBe(
      `echo ${SSH_READY}; exec env OMPX_MCA_k=v /opt/ompx/bin/ompx orted --hnp tcp://10.0.0.1:4000 --node n1 --mca a 'b c'`,
    )
    expect(cmd).not.toContain('c0ffee')
  })

  test('parameters: defaults, launch_agent, preload, bad values', () => {
    expect(sshOptions(hostWith({}))).toEqual({ agent: ['ssh'], extraArgs: [], launchAgent: undefined, preload: false, concurrency: 32 })
    const o = sshOptions(hostWith({ launch_agent: '/remote/ompx', preload_binary: 'yes', launcher_ssh_concurrency: '4' }))
    expect([o.launchAgent, o.preload, o.concurrency]).toEqual(['/remote/ompx', true, 4])
    expect(() => sshOptions(hostWith({ launcher_ssh_concurrency: '0' }))).toThrow(ActionableError)
    expect(() => sshOptions(hostWith({ launcher_ssh_agent: 'ssh -i "x' }))).toThrow(ActionableError)
  })

  test('preload scripts: one line each, size and mtime in the name and the check', () => {
    const s = preloadScripts(1234, 1700000000)
    for (const script of [s.check, s.install]) {
      expect(script).not.toContain('\n')
      expect(script).toContain('/tmp/ompx-preload-$(id -u)')
      expect(script).toContain('ompx-1234-1700000000')
      expect(script).toContain(`"1234 1700000000"`)
    }
    expect(s.install).toContain('touch -d @1700000000')
    expect(s.install).toContain('mv -f')
  })

  test('accepts nodes that are not this host under one of its names', async () => {
    const p = (await sshFactory(hostWith({}))) as LauncherPlugin
    expect([p.name, p.priority]).toEqual(['ssh', 5])
    expect(p.accepts([{ name: 'n1', slots: 1 }, { name: 'n2.cluster', slots: 1 }])).toBe(true)
    expect(p.accepts([{ name: 'n1', slots: 1 }, { name: 'localhost', slots: 1 }])).toBe(false)
    expect(p.accepts([{ name: '127.0.0.1', slots: 1 }])).toBe(false)
    // Simulated nodes on other loopback addresses may be reached over ssh (the test sshd).
    expect(p.accepts([{ name: '127.0.1.2', slots: 1 }])).toBe(true)
    expect(p.accepts([])).toBe(false)
    expect(p.params?.map((d) => d.key)).toEqual(['launcher_ssh_agent', 'launcher_ssh_args', 'launcher_ssh_concurrency', 'launch_agent', 'preload_binary'])
  })
})

describe('launch loop with a stand-in ssh', () => {
  test('secret on stdin, bounded concurrency, clean kill', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ompx-ssh-unit-'))
    try {
      // "ssh": waits 200 ms (the connection), then runs the remote command locally.
      const fakeSsh = join(dir, 'fake-rsh')
      writeFileSync(fakeSsh, `#!/bin/sh\nsleep 0.2\necho "$1" >> ${dir}/hosts\nshift\nexec sh -c "$1"\n`)
      const fakeOrted = join(dir, 'orted')
      writeFileSync(fakeOrted, `#!/bin/sh\nread -r s\necho "$s" > ${dir}/$5.secret\ncat >/dev/null\n`)
      chmodSync(fakeSsh, 0o755)
      chmodSync(fakeOrted, 0o755)
      const nodes = ['a', 'b', 'c', 'd'].map((name) => ({ name, slots: 1, address: name === 'd' ? '10.9.9.9' : undefined }))
      const started = performance.now()
      const ds = await launchSsh(req({ nodes, execPath: fakeOrted }), { agent: [fakeSsh], extraArgs: [], preload: false, concurrency: 2 }, hostWith({}).log)
      // Two waves of two "connections".
      expect(performance.now() - started).toBeGreaterThan(380)
      expect(ds.map((d) => d.node)).toEqual(['a', 'b', 'c', 'd'])
      for (let i = 0; i < 100 && !ds.every((d) => Bun.file(join(dir, `${d.node}.secret`)).size > 0); i++) await Bun.sleep(20)
      for (const d of ds) expect(readFileSync(join(dir, `${d.node}.secret`), 'utf8')).toBe('c0ffee\n')
      // ssh goes to a node's address when it has one.
      expect(readFileSync(join(dir, 'hosts'), 'utf8').split('\n').sort()).toEqual(['', '10.9.9.9', 'a', 'b', 'c'])
      for (const d of ds) d.kill()
      expect(await Promise.all(ds.map((d) => d.exited))).toHaveLength(4)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a missing ssh is a clear error', async () => {
    await expect(launchSsh(req(), { agent: ['no-such-ssh-here'], extraArgs: [], preload: false, concurrency: 1 }, hostWith({}).log)).rejects.toThrow('not found')
  })

  test('a host name starting with "-" is a user error, before any ssh starts', async () => {
    const message = /^ssh launcher: host name "-oProxyCommand=x" starts with "-", which ssh would read as an option; rename the host/
    expect(() => sshArgv({ agent: ['ssh'], extraArgs: [] }, '-oProxyCommand=x', 'true')).toThrow(ActionableError)
    expect(() => sshArgv({ agent: ['ssh'], extraArgs: [] }, '-oProxyCommand=x', 'true')).toThrow(message)
    // `sh` as the agent would run something for the first node if the check came per node.
    const nodes = [{ name: 'ok', slots: 1 }, { name: '-oProxyCommand=x', slots: 1 }]
    const launched = launchSsh(req({ nodes }), { agent: ['sh'], extraArgs: [], preload: false, concurrency: 1 }, hostWith({}).log)
    await expect(launched).rejects.toThrow(message)
    await expect(launched).rejects.toBeInstanceOf(ActionableError)
  })

  test('mapBounded keeps order and never exceeds the limit', async () => {
    let running = 0
    let peak = 0
    const got = await mapBounded([5, 1, 4, 2, 3], 2, async (n) => {
      peak = Math.max(peak, ++running)
      await Bun.sleep(n * 5)
      running--
      return n * 10
    })
    expect(got).toEqual([50, 10, 40, 20, 30])
    expect(peak).toBe(2)
  })
})
