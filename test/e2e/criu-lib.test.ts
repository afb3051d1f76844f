/**
 * The CRIU layer (src/criu) with a real criu: launch under CRIU's rules, dump with and without
 * --leave-running, restore on fresh sockets with the exit status collected, for a C program with
 * 64 MiB of state, a bash loop, a Python script, a program appending to an open file, and two
 * trees at once; failures name the criu log line. criu comes from scripts/install-criu.sh.
 *
 * Availability is decided when the file loads (so the tests can be skipped with the reason): not
 * root, or no criu that passes `criu check`, skips here and FAILS in CI (CI=true), where the
 * CRIU tests must run.
 */
import { $ } from 'bun'
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findCriu } from '../../plugins/crs/criu/binary'
import { dumpTree } from '../../plugins/crs/criu/dump'
import { inetSockets, softDirty } from '../../plugins/crs/criu/features'
import { launchUnderCriu } from '../../plugins/crs/criu/launch'
import { causeLine } from '../../plugins/crs/criu/log'
import { restoreTree } from '../../plugins/crs/criu/restore'
import { childrenOf, statusToExit } from '../../plugins/crs/criu/tree'
import type { CriuBinary } from '../../plugins/crs/criu/binary'
import type { DumpInfo } from '../../plugins/crs/criu/dump'
import criuPlugin from '../../plugins/crs/criu/index'
import { renderDoctor } from '../../src/doctor/render'
import { doctorReport } from '../../src/doctor/report'
import { ActionableError } from '../../src/errors'
import { createRuntime } from '../../src/commands/_context'
import { currentMark, FIXTURES, guardLeftovers, MARK_VAR, REPO } from '../helpers'
import { collect, noChildrenLeft, referenceLines, ticksOf } from '../fixtures/criu-helpers'

setDefaultTimeout(120_000)
guardLeftovers()

function setupCriu(): { criu: CriuBinary } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: `not root (uid ${process.getuid?.()}): criu needs root` }
  const r = Bun.spawnSync(['bash', join(REPO, 'scripts/install-criu.sh')], { stdout: 'pipe', stderr: 'pipe', timeout: 600_000 })
  const path = r.stdout.toString().trim()
  if (r.exitCode !== 0 || !path) return { reason: `scripts/install-criu.sh failed: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}` }
  try {
    return { criu: findCriu(path) }
  } catch (e) {
    return { reason: (e as Error).message }
  }
}

const setup = setupCriu()
const reason = 'reason' in setup ? setup.reason : null
if (reason && process.env.CI === 'true') {
  test('criu is available (required in CI)', () => {
    throw new Error(`the CRIU tests cannot run: ${reason}`)
  })
} else if (reason) console.warn(`skipping the criu library tests: ${reason}`)
const criu = 'criu' in setup ? setup.criu : (undefined as unknown as CriuBinary)

const tmp = mkdtempSync(join(tmpdir(), 'ompx-criu-lib-'))
const COUNTER = join(tmp, 'criu-counter')
const PY = join(FIXTURES, 'criu-counter.py')
beforeAll(async () => {
  if (!reason) await $`cc -O2 -o ${COUNTER} ${join(FIXTURES, 'criu-counter.c')}`
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
afterEach(async () => {
  // criu restore waiters and unshare wrappers are our children: none may outlive a test.
  const left = await noChildrenLeft()
  if (left.length) throw new Error(`processes left behind (killed): ${left.join('; ')}`)
})

let n = 0
const newDir = () => join(tmp, `img-${++n}`)
/** Launch with the test's marker in the environment, so guardLeftovers finds every process of the tree. */
const launch = (argv: string[], stdin = false) =>
  launchUnderCriu({ argv, env: { ...(process.env as Record<string, string>), [MARK_VAR]: currentMark() }, stdin })
const counter = (ticks: number, extra: string[] = []) => [COUNTER, '--ticks', String(ticks), '--interval-ms', '20', ...extra]

/** Launch, wait for `at` ticks (lines matching `re`), dump+kill, restore: both outputs and the restored tree. */
async function dumpKillRestore(argv: string[], re: RegExp, at: number) {
  const tree = await launch(argv)
  const out1 = collect(tree.stdout)
  const err1 = collect(tree.stderr)
  await out1.waitFor(re, at)
  const dir = newDir()
  const info = await dumpTree({ criu, pid: tree.pid, dir })
  expect(await tree.exited).toEqual({ code: null, signal: 'SIGKILL' })
  await out1.done
  const restored = await restoreTree({ criu, dir, info })
  return { out1, err1, dir, info, restored, out2: collect(restored.stdout), err2: collect(restored.stderr) }
}

describe.skipIf(!!reason)('criu library', () => {
  test('C program with 64 MiB: --leave-running keeps it going; dump+kill then restore continues the count and reports the exit status', async () => {
    const argv = counter(80, ['--mib', '64', '--exit', '7'])
    const expected = referenceLines([COUNTER, '--ticks', '80', '--interval-ms', '0', '--mib', '64'])
    const tree = await launch(argv)
    const out = collect(tree.stdout)
    await out.waitFor(/^tick /, 10)
    // Nothing but stdio reaches the program; the root holds the status channel on fd 3 too, and
    // the program's stderr on fd 4, its own fd 2 being /dev/null (no "Terminated" from it).
    expect(readdirSync(`/proc/${childrenOf(tree.pid)[0]}/fd`).sort()).toEqual(['0', '1', '2'])
    expect(readdirSync(`/proc/${tree.pid}/fd`).sort()).toEqual(['0', '1', '2', '3', '4'])
    expect(readlinkSync(`/proc/${tree.pid}/fd/2`)).toBe('/dev/null')
    const running = newDir()
    const infoRunning = await dumpTree({ criu, pid: tree.pid, dir: running, leaveRunning: true })
    expect(infoRunning).toMatchObject({ nsPid: 1, init: true, leaveRunning: true, criuVersion: criu.version })
    expect(infoRunning.imageBytes).toBeGreaterThan(64 * 1024 * 1024)
    expect(readFileSync(join(running, 'dump.log'), 'utf8').length).toBeGreaterThan(0)
    const afterFirst = ticksOf(out.text).length
    await out.waitFor(/^tick /, afterFirst + 5) // still counting, unharmed
    const { restored, out2, out1 } = await (async () => {
      const dir = newDir()
      const info = await dumpTree({ criu, pid: tree.pid, dir })
      expect(await tree.exited).toEqual({ code: null, signal: 'SIGKILL' })
      await out.done
      const r = await restoreTree({ criu, dir, info })
      return { restored: r, out2: collect(r.stdout), out1: out }
    })()
    expect(restored.pid).not.toBe(tree.pid)
    expect(await restored.exited).toEqual({ code: 7, signal: null })
    await out2.done
    const before = ticksOf(out1.text)
    // Restored output starts at the next tick, not at 1, on the new socket; together they are
    // exactly the uninterrupted run, checksum of all 64 MiB included.
    expect(ticksOf(out2.text)[0]!.split(' ')[1]).toBe(String(before.length + 1))
    expect([...before, ...out2.lines().filter((l) => !l.startsWith('start'))]).toEqual(expected)

    // The --leave-running image is a valid checkpoint too: it resumes where it was frozen.
    const again = await restoreTree({ criu, dir: running, info: infoRunning })
    const out3 = collect(again.stdout)
    expect(await again.exited).toEqual({ code: 7, signal: null })
    await out3.done
    const resumed = out3.lines()
    const first = Number(resumed[0]!.split(' ')[1])
    expect(first).toBeGreaterThan(10)
    // Frozen no later than the second dump (our reader may lag the program, so the count we had
    // read when the first dump returned is no upper bound).
    expect(first).toBeLessThanOrEqual(before.length + 1)
    expect(resumed).toEqual(expected.slice(first - 1))
  })

  test('stdin is re-attached: the restored program reads new input and sees EOF', async () => {
    const argv = ['sh', '-c', 'while read -r l; do echo "got $l"; done; echo eof; exit 4']
    const tree = await launch(argv, true)
    const out1 = collect(tree.stdout)
    tree.stdin!.write('one\n')
    tree.stdin!.flush()
    await out1.waitFor(/^got one$/)
    const dir = newDir()
    const info = await dumpTree({ criu, pid: tree.pid, dir })
    await tree.exited
    const restored = await restoreTree({ criu, dir, info, stdin: true })
    const out2 = collect(restored.stdout)
    restored.stdin!.write('two\n')
    await restored.stdin!.flush()
    await out2.waitFor(/^got two$/)
    await restored.stdin!.end()
    expect(await restored.exited).toEqual({ code: 4, signal: null })
    await out2.done
    expect(out2.lines()).toEqual(['got two', 'eof'])
  })

  test('a bash loop continues from its counter after a restore', async () => {
    const script = 'for ((i=1;i<=60;i++)); do echo "bash $i"; sleep 0.02; done; echo "bash stderr" >&2; exit 3'
    const r = await dumpKillRestore(['bash', '-c', script], /^bash \d+$/, 15)
    expect(await r.restored.exited).toEqual({ code: 3, signal: null })
    await Promise.all([r.out2.done, r.err2.done])
    const all = [...r.out1.lines(), ...r.out2.lines()]
    expect(all).toEqual(Array.from({ length: 60 }, (_, i) => `bash ${i + 1}`))
    expect(Number(r.out2.lines()[0]!.split(' ')[1])).toBeGreaterThan(15)
    expect(r.err2.text).toBe('bash stderr\n') // stderr re-attached as well
    expect(r.err1.text).toBe('') // nothing from the wrappers (unshare) in the program's stderr
    expect(existsSync(r.info.rootDir!)).toBe(false) // the root's private dir is gone with the tree
  })

  test('a Python script continues from its state after a restore', async () => {
    const expected = referenceLines(['python3', PY, '80', '0', '5', '16'])
    const r = await dumpKillRestore(['python3', PY, '80', '0.02', '5', '16'], /^py \d+ /, 15)
    expect(await r.restored.exited).toEqual({ code: 5, signal: null })
    await r.out2.done
    expect(Number(r.out2.lines()[0]!.split(' ')[1])).toBeGreaterThan(15)
    expect([...r.out1.lines(), ...r.out2.lines()]).toEqual(expected)
  })

  test('a file kept open for append goes on from the same position', async () => {
    const file = join(tmp, 'append.txt')
    const r = await dumpKillRestore(counter(50, ['--mib', '4', '--append', file]), /^tick /, 12)
    expect(await r.restored.exited).toEqual({ code: 0, signal: null })
    await r.out2.done
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    expect(lines).toEqual(ticksOf([r.out1.text, r.out2.text].join('')))
    expect(lines.map((l) => Number(l.split(' ')[1]))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
  })

  test('two trees dumped and restored in parallel', async () => {
    const trees = await Promise.all([launch(counter(60, ['--exit', '1'])), launch(counter(60, ['--exit', '2']))])
    const outs = trees.map((t) => collect(t.stdout))
    await Promise.all(outs.map((o) => o.waitFor(/^tick /, 10)))
    const dirs = [newDir(), newDir()]
    const infos = await Promise.all(trees.map((t, i) => dumpTree({ criu, pid: t.pid, dir: dirs[i]! })))
    await Promise.all([...trees.map((t) => t.exited), ...outs.map((o) => o.done)])
    const restored = await Promise.all(infos.map((info, i) => restoreTree({ criu, dir: dirs[i]!, info })))
    const outs2 = restored.map((t) => collect(t.stdout))
    expect(await Promise.all(restored.map((t) => t.exited))).toEqual([
      { code: 1, signal: null },
      { code: 2, signal: null },
    ])
    const expected = referenceLines([COUNTER, '--ticks', '60', '--interval-ms', '0'])
    for (let i = 0; i < 2; i++) {
      await outs2[i]!.done
      expect([...ticksOf(outs[i]!.text), ...outs2[i]!.lines()]).toEqual(expected)
    }
  })

  test('a restore from a deleted or corrupted image fails with the criu log line and leaves nothing behind', async () => {
    const tree = await launch(counter(1000, ['--mib', '4']))
    await collect(tree.stdout).waitFor(/^tick /, 3)
    const dir = newDir()
    const info = await dumpTree({ criu, pid: tree.pid, dir })
    await tree.exited
    const broken = (name: string, damage: (d: string) => void) => {
      const d = join(tmp, name)
      cpSync(dir, d, { recursive: true })
      damage(d)
      return d
    }
    const noPages = broken('no-pages', (d) => readdirSync(d).filter((f) => f.startsWith('pages-')).forEach((f) => unlinkSync(join(d, f))))
    const badCore = broken('bad-core', (d) => readdirSync(d).filter((f) => f.startsWith('core-')).forEach((f) => writeFileSync(join(d, f), 'garbage')))
    for (const d of [noPages, badCore]) {
      const err = await restoreTree({ criu, dir: d, info }).then(
        () => null,
        (e: Error) => e,
      )
      expect(err?.message).toMatch(new RegExp(`^criu restore from ${d} failed: (Error|BUG) .*\\(log: ${join(d, 'restore.log')}\\)$`))
    }
    const empty = join(tmp, 'empty')
    const err = await restoreTree({ criu, dir: empty, info }).catch((e: Error) => e)
    expect((err as Error).message).toContain(`no criu images in ${empty}`)
  })

  test('a dump that criu refuses names the cause and leaves the rank running', async () => {
    const sock = join(tmp, 'ext.sock')
    const server = Bun.listen({ unix: sock, socket: { data() {} } })
    try {
      const py = `import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(sock)})\ni=0\nwhile True:\n  i+=1; print("py", i, flush=True); time.sleep(0.02)`
      const tree = await launch(['python3', '-c', py])
      const out = collect(tree.stdout)
      await out.waitFor(/^py /, 3)
      const dir = newDir()
      const err = await dumpTree({ criu, pid: tree.pid, dir }).catch((e: Error) => e)
      expect((err as Error).message).toMatch(new RegExp(`^criu dump of pid ${tree.pid} failed: Error \\(criu/sk-unix\\.c:\\d+\\): unix: .* \\(log: ${dir}/dump\\.log\\)$`))
      const seen = out.lines().length
      await out.waitFor(/^py /, seen + 3) // unharmed
      tree.kill('SIGTERM')
      expect(await tree.exited).toEqual({ code: null, signal: 'SIGTERM' })
    } finally {
      server.stop(true)
    }
  })

  test('TCP: an established loopback connection inside the tree survives dump and restore (or a clear error where criu cannot)', async () => {
    const py = [
      'import socket,time',
      "srv=socket.socket(); srv.bind(('127.0.0.1',0)); srv.listen(1)",
      'c=socket.create_connection(srv.getsockname()); s,_=srv.accept()',
      'for i in range(1,61):',
      "  c.sendall(b'%d\\n' % i); print('tcp', i, s.recv(100).decode().strip(), flush=True); time.sleep(0.02)",
    ].join('\n')
    const tree = await launch(['python3', '-c', py])
    const out1 = collect(tree.stdout)
    await out1.waitFor(/^tcp /, 10)
    const dir = newDir()
    if (!inetSockets(criu).ok) {
      // criu < 4.2 on Linux >= 6.16: refused, with the socket option it could not read.
      const err = await dumpTree({ criu, pid: tree.pid, dir, tcpEstablished: true }).catch((e: Error) => e)
      expect((err as Error).message).toMatch(/failed: Error \(criu\/sockets\.c:\d+\): sockets: Can't get 1:\d+ opt: Operation not supported/)
      tree.kill('SIGKILL')
      await tree.exited
      return
    }
    const refused = await dumpTree({ criu, pid: tree.pid, dir: newDir() }).catch((e: Error) => e)
    expect((refused as Error).message).toContain('consider using --tcp-established')
    const info = await dumpTree({ criu, pid: tree.pid, dir, tcpEstablished: true })
    expect(info.options).toMatchObject({ tcpEstablished: true })
    await tree.exited
    await out1.done
    const restored = await restoreTree({ criu, dir, info })
    const out2 = collect(restored.stdout)
    expect(await restored.exited).toEqual({ code: 0, signal: null })
    await out2.done
    const all = [...out1.lines(), ...out2.lines()]
    expect(all).toEqual(Array.from({ length: 60 }, (_, i) => `tcp ${i + 1} ${i + 1}`))
  })

  test('signals: TERM to a restored tree, USR1 to its program, and killing criu takes the tree', async () => {
    const tree = await launch(counter(1000, ['--mib', '4']))
    await collect(tree.stdout).waitFor(/^tick /, 3)
    const dir = newDir()
    const info = await dumpTree({ criu, pid: tree.pid, dir })
    await tree.exited
    const restore = async () => {
      const r = await restoreTree({ criu, dir, info })
      await collect(r.stdout).waitFor(/^tick /, 1)
      return r
    }
    let r = await restore()
    r.kill('SIGTERM')
    expect(await r.exited).toEqual({ code: null, signal: 'SIGTERM' })
    r = await restore()
    r.signalProgram('SIGUSR1')
    expect(await r.exited).toEqual({ code: null, signal: 'SIGUSR1' })
    r = await restore()
    const program = childrenOf(r.pid)[0]!
    process.kill(r.wrapperPid, 'SIGKILL') // the restored root keeps unshare's parent-death signal
    const exit = await r.exited
    expect(exit.signal).toBe('SIGKILL')
    // The namespace's other processes die with its init, a moment after the root's fds close.
    const alive = () => existsSync(`/proc/${program}/cmdline`) && readFileSync(`/proc/${program}/cmdline`, 'utf8') !== ''
    for (let i = 0; i < 100 && alive(); i++) await Bun.sleep(20)
    expect(alive()).toBe(false)
  })

  test('the crs criu plugin: checkpointable here, capture with and without term', async () => {
    const host = { param: (k: string) => (k === 'crs_criu_path' ? criu.path : undefined), ActionableError } as never
    const plugin = (await criuPlugin(host)) as import('../../src/plugins/types').CrsPlugin
    expect(plugin.notCheckpointable()).toBeNull()
    expect(plugin.params!.map((p) => p.key)).toContain('crs_criu_tcp_established')
    const tree = await launch(counter(1000, ['--mib', '4']))
    const out = collect(tree.stdout)
    await out.waitFor(/^tick /, 3)
    const req = { rank: 3, node: 'n1', pid: tree.wrapperPid, app: null }
    const kept = await plugin.capture({ ...req, dir: newDir(), options: [] })
    expect((kept.info as unknown as DumpInfo).leaveRunning).toBe(true)
    await out.waitFor(/^tick /, out.lines().length + 2)
    const ended = await plugin.capture({ ...req, dir: newDir(), options: ['term'] })
    expect((ended.info as unknown as DumpInfo).pid).toBe(tree.pid)
    expect(await tree.exited).toEqual({ code: null, signal: 'SIGKILL' })
    const err = await plugin.capture({ ...req, dir: newDir(), options: ['term'] }).catch((e: Error) => e)
    expect((err as Error).message).toMatch(/^crs criu: checkpoint of rank 3 on node n1 failed: /)
  })

  test('programs that end at once: exit code, missing program, private dir removed', async () => {
    const quick = await launch(['sh', '-c', 'echo hi; exit 9'])
    const out = collect(quick.stdout)
    expect(await quick.exited).toEqual({ code: 9, signal: null })
    await out.done
    expect(out.text).toBe('hi\n')
    const missing = await launch(['/nonexistent/program'])
    const err = collect(missing.stderr)
    expect(await missing.exited).toEqual({ code: 127, signal: null })
    await err.done
    expect(err.text).toContain('/nonexistent/program')
  })

  test('ompx doctor: crs criu works here, with the soft-dirty verdict and the criu in use', async () => {
    const { registry } = await createRuntime({ opts: {}, rest: [], help: false, dashdash: false })
    const report = doctorReport(registry, { criuPath: criu.path })
    const crs = report.sections[0]!.checks.find((c) => c.name === 'criu')!
    expect(crs.verdict).toBe('ok')
    const criuChecks = report.sections[1]!.checks
    expect(criuChecks.find((c) => c.name === 'criu')!.detail).toContain(`criu ${criu.version}`)
    expect(criuChecks.find((c) => c.name === 'pre-dump')!.detail).toMatch(/pre-dump/)
    expect(renderDoctor(report)).toMatch(/^ {2}ok +criu +transparent checkpoint\/restart/m)
  })

  test('helpers: the cause line skips the benign rlimit error; shell status 128+N is signal N; soft-dirty is reported', () => {
    const log = [
      "(00.030358) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
      '(00.048953) Error (criu/sk-unix.c:874): unix: External socket is used. Consider using --ext-unix-sk option.',
      '(00.049014) Error (criu/cr-dump.c:2111): Dumping FAILED.',
    ].join('\n')
    expect(causeLine(log)).toBe('Error (criu/sk-unix.c:874): unix: External socket is used. Consider using --ext-unix-sk option.')
    expect(causeLine('(00.049014) Error (criu/cr-dump.c:2111): Dumping FAILED.')).toBe('Error (criu/cr-dump.c:2111): Dumping FAILED.')
    expect(statusToExit(143)).toEqual({ code: null, signal: 'SIGTERM' })
    expect(statusToExit(7)).toEqual({ code: 7, signal: null })
    const sd = softDirty(criu)
    expect(sd.message).toMatch(sd.ok ? /pre-dump and incremental dumps are available/ : /^no soft-dirty tracking on this kernel: pre-dump is unavailable/)
  })
})

