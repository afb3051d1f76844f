/**
 * The ssh launcher over real ssh, against the private sshd of scripts/setup-test-sshd.sh (loopback
 * only: 127.0.1.2-4 stand for three remote nodes). A stand-in "orted" (a sh script) records the
 * first stdin line, its argv and environment, then waits for stdin EOF as the real daemon does.
 * Skipped, saying why, only when that sshd cannot run on this machine.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import sshFactory from '../../plugins/launcher/ssh'
import { ActionableError } from '../../src/errors'
import type { DaemonLaunchRequest, DaemonProcess, HostApi, LauncherPlugin } from '../../src/plugins/types'
import type { SpawnedDaemon } from '../../plugins/launcher/common'
import { REPO } from '../helpers'
import { spawnRank } from '../../src/runtime/rank-process'

const sshdPidFile = join(process.env.OMPX_TEST_SSHD_DIR ?? join(REPO, '.cache/test-sshd'), 'sshd.pid')
/** Whether a test sshd was already up: then it is someone else's, and we leave it running. */
const sshdWasRunning = (() => {
  try {
    const pid = readFileSync(sshdPidFile, 'utf8').trim()
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sshd'
  } catch {
    return false
  }
})()
const setup = Bun.spawnSync(['bash', join(REPO, 'scripts/setup-test-sshd.sh')], { stdout: 'pipe', stderr: 'pipe' })
const sshdOk = setup.exitCode === 0
if (!sshdOk) {
  const why = `the test sshd cannot run here:\n${setup.stderr.toString().trim()}`
  // CI installs and runs it (scripts/setup-test-sshd.sh); there, a skip would hide a broken launcher.
  if (process.env.CI) throw new Error(`ssh launcher e2e: ${why}`)
  console.warn(`ssh launcher e2e skipped: ${why}`)
}
const sshDir = process.env.OMPX_TEST_SSHD_DIR ?? join(REPO, '.cache/test-sshd')
const sshConfig = join(sshDir, 'ssh_config')

const work = mkdtempSync(join(tmpdir(), 'ompx-ssh-e2e-'))
const out = join(work, 'out')
const fakeOrted = join(work, 'fake-orted')
// Bracketed so that `pgrep -f` on the pattern does not match the pgrep command itself.
const leftoverPattern = `[${work[0]}]${work.slice(1)}/fake-orted`
writeFileSync(
  fakeOrted,
  `#!/bin/sh
node=; prev=
for a in "$@"; do [ "$prev" = --node ] && node=$a; prev=$a; done
IFS= read -r secret
printf '%s\\n' "$*" > ${out}/$node.argv
env > ${out}/$node.env
printf '%s\\n' "$secret" > ${out}/$node.secret.tmp && mv ${out}/$node.secret.tmp ${out}/$node.secret
cat > /dev/null
echo eof > ${out}/$node.eof
`,
)
chmodSync(fakeOrted, 0o755)
Bun.spawnSync(['mkdir', '-p', out])

const debugLines: string[] = []
function launcher(params: Record<string, string>): Promise<LauncherPlugin> {
  const host: HostApi = {
    version: 'test',
    log: { info: () => {}, warn: () => {}, error: () => {}, debug: (...a) => debugLines.push(a.join(' ')) },
    param: (k) => params[k],
    ActionableError,
    spawnRank,
  }
  return sshFactory(host) as Promise<LauncherPlugin>
}
const secret = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')
const request = (names: string[], s: string, extra: Partial<DaemonLaunchRequest> = {}): DaemonLaunchRequest => ({
  nodes: names.map((name) => ({ name, slots: 1 })),
  hnpUri: 'tcp://127.0.1.1:40123',
  secret: s,
  execPath: fakeOrted,
  ortedArgs: ['--mca', 'some_param', 'a value with spaces'],
  env: { OMPX_MCA_test_value: `it's "$HOME"` },
  ...extra,
})

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(50)
  }
}
const leftovers = () => Bun.spawnSync(['pgrep', '-f', leftoverPattern]).stdout.toString().trim()
/** Every process whose argv or environment holds `text`. */
function procsHolding(text: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    for (const file of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${pid}/${file}`, 'latin1').includes(text)) found.push(`${pid}:${file}`)
      } catch {}
    }
  }
  return found
}

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  // No daemon outlives the tests: stop the sshd if this file started it.
  if (sshdOk && !sshdWasRunning) Bun.spawnSync(['bash', join(REPO, 'scripts/setup-test-sshd.sh'), '--stop'], { stdout: 'ignore', stderr: 'ignore' })
})

describe.skipIf(!sshdOk)('ssh launcher over a real sshd', () => {
  const agent = `ssh -F ${sshConfig}`
  const nodes = ['127.0.1.2', '127.0.1.3', '127.0.1.4']

  test('three daemons get the secret on stdin, not in argv or env; kill() leaves nothing behind', async () => {
    const plugin = await launcher({ launcher_ssh_agent: agent })
    const s = secret()
    const daemons = await plugin.launch(request(nodes, s))
    expect(daemons.map((d) => d.node)).toEqual(nodes)
    await until(() => nodes.every((n) => existsSync(join(out, `${n}.secret`))), 'the daemons to start')
    for (const n of nodes) {
      expect(readFileSync(join(out, `${n}.secret`), 'utf8')).toBe(`${s}\n`)
      expect(readFileSync(join(out, `${n}.argv`), 'utf8')).toBe(
        `orted --hnp tcp://127.0.1.1:40123 --node ${n} --mca some_param a value with spaces\n`,
      )
      expect(readFileSync(join(out, `${n}.env`), 'utf8')).toContain(`OMPX_MCA_test_value=it's "$HOME"\n`)
    }
    expect(procsHolding(s)).toEqual([])
    expect(leftovers()).not.toBe('')

    for (const d of daemons) d.kill()
    expect(await Promise.all(daemons.map((d) => d.exited))).toHaveLength(3)
    await until(() => leftovers() === '', 'the remote daemons to exit')
    await until(() => nodes.every((n) => existsSync(join(out, `${n}.eof`))), 'stdin EOF on every node')
  }, 30_000)

  test('closing stdin alone ends the remote daemon and ssh exits 0', async () => {
    const plugin = await launcher({ launcher_ssh_agent: agent })
    const [d] = (await plugin.launch(request(['127.0.1.2'], secret()))) as SpawnedDaemon[]
    await until(() => existsSync(join(out, '127.0.1.2.secret')) && leftovers() !== '', 'the daemon to start')
    rmSync(join(out, '127.0.1.2.eof'), { force: true })
    d!.closeStdin()
    expect(await d!.exited).toBe(0)
    await until(() => leftovers() === '', 'the remote daemon to exit')
  }, 20_000)

  test('an HNP killed with SIGKILL leaves no remote daemon behind', async () => {
    const script = join(work, 'hnp.ts')
    writeFileSync(
      script,
      `import f from ${JSON.stringify(join(REPO, 'plugins/launcher/ssh.ts'))}
const p = await f({ version: 't', log: console, param: (k) => ({ launcher_ssh_agent: ${JSON.stringify(agent)} })[k], ActionableError: Error })
await p.launch(${JSON.stringify(request(['127.0.1.3'], secret()))})
console.log('launched')
setInterval(() => {}, 1000)
`,
    )
    rmSync(join(out, '127.0.1.3.secret'), { force: true })
    const hnp = Bun.spawn([process.execPath, script], { stdout: 'pipe', stderr: 'inherit' })
    await until(() => existsSync(join(out, '127.0.1.3.secret')), 'the daemon to start')
    expect(leftovers()).not.toBe('')
    hnp.kill('SIGKILL')
    await hnp.exited
    await until(() => leftovers() === '', 'the orphaned remote daemon to exit')
  }, 20_000)

  test('a key the node does not accept: exited resolves and stderrTail says Permission denied', async () => {
    const badKey = join(work, 'bad_key')
    Bun.spawnSync(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', badKey])
    const badConfig = join(work, 'bad_ssh_config')
    writeFileSync(badConfig, readFileSync(sshConfig, 'utf8').replace(/IdentityFile .*/, `IdentityFile ${badKey}`))
    const plugin = await launcher({ launcher_ssh_agent: `ssh -F ${badConfig}` })
    const [d] = await plugin.launch(request(['127.0.1.4'], secret()))
    expect(await d!.exited).toBe(255)
    expect(d!.stderrTail()).toContain('Permission denied')
  }, 20_000)

  test('preload_binary copies the agent to /tmp/ompx-preload-<uid>/ (0700) once and reuses it', async () => {
    const plugin = await launcher({ launcher_ssh_agent: agent, preload_binary: '1' })
    const st = statSync(fakeOrted)
    const copy = `/tmp/ompx-preload-${process.getuid!()}/ompx-${st.size}-${Math.floor(st.mtimeMs / 1000)}`
    rmSync(copy, { force: true })
    const run = async (): Promise<DaemonProcess> => {
      rmSync(join(out, '127.0.1.2.secret'), { force: true })
      const [d] = await plugin.launch(request(['127.0.1.2'], secret()))
      await until(() => existsSync(join(out, '127.0.1.2.secret')) || d!.stderrTail() !== '', 'the preloaded daemon')
      expect(d!.stderrTail()).toBe('')
      return d!
    }
    try {
      debugLines.length = 0
      const first = await run()
      expect(statSync(copy).mode & 0o777).toBe(0o700)
      expect(debugLines.join('\n')).toContain(`copying ${fakeOrted}`)
      first.kill()
      await first.exited
      debugLines.length = 0
      const second = await run()
      expect(debugLines.join('\n')).toContain(`reusing preloaded ${copy}`)
      second.kill()
      await second.exited
      await until(() => leftovers() === '' && Bun.spawnSync(['pgrep', '-f', `[${copy[0]}]${copy.slice(1)}`]).exitCode !== 0, 'exit')
    } finally {
      rmSync(copy, { force: true })
      try {
        rmdirSync(dirname(copy)) // only if empty: someone may use preloading for real
      } catch {}
    }
  }, 30_000)
})
