/**
 * `ompx shim` (the compiled binary, OMPX_BIN or dist/ompx) against an in-test AppServer: the
 * signal + done-file convention with a shell and a C program, restart, --term, the failure
 * messages, exit status and signal propagation, and that nothing is left behind.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppServer, type AppRequest } from '../../src/orted/snapc/app-server'
import { FIXTURES, guardLeftovers, spawnOmpx, userErrorProblems, type OmpxProcess } from '../helpers'

setDefaultTimeout(30_000)
guardLeftovers()

const LOOP = join(FIXTURES, 'ckpt-loop.sh')
let dir: string
let server: AppServer
let events: string[]
let restartDir: string | null
let cbin: string

beforeAll(() => {
  cbin = join(mkdtempSync(join(tmpdir(), 'ompx-shim-cc-')), 'ckpt-counter')
  const cc = Bun.spawnSync(['cc', '-O2', '-o', cbin, join(FIXTURES, 'ckpt-counter.c')])
  if (cc.exitCode !== 0) throw new Error(`cc failed: ${cc.stderr.toString()}`)
})

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ompx-shim-'))
  mkdirSync(join(dir, 'session'), { mode: 0o700 })
  events = []
  restartDir = null
  server = await AppServer.listen({
    path: join(dir, 'app.sock'),
    token: (r) => (r === 0 ? 'c0ffee' : undefined),
    restartDir: () => restartDir,
    events: {
      linked: (r) => void events.push(`linked ${r}`),
      unlinked: (r) => void events.push(`unlinked ${r}`),
      prep: (r, st, m) => void events.push(`prep ${st}${m ? ` ${m}` : ''}`),
      request(r: number, q: AppRequest) {
        events.push(q.op)
        server.reply(r, q.id, true)
      },
    },
  })
})
afterEach(() => {
  server.close()
  rmSync(dir, { recursive: true, force: true })
})

function shim(args: string[], env: Record<string, string | undefined> = {}): OmpxProcess {
  return spawnOmpx(['shim', ...args], {
    env: {
      OMPX_COORD_SOCK: join(dir, 'app.sock'),
      OMPX_COORD_TOKEN: 'c0ffee',
      OMPX_RANK: '0',
      OMPX_SIZE: '1',
      OMPX_SESSION_DIR: join(dir, 'session'),
      OMPX_RESTART: undefined,
      OMPX_RESTART_DIR: undefined,
      ...env,
    },
    timeoutMs: 20_000,
  })
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${events.join(', ')}`)
    await Bun.sleep(10)
  }
}

/** CKPT, wait for PREP OK, then CAPTURE into a fresh dir; returns the capture's promise and the dir. */
async function checkpoint(options: string[] = []): Promise<{ captured: Promise<void>; snap: string }> {
  await until(() => events.includes('init'), 'INIT')
  const snap = join(dir, `snap-${Math.random().toString(36).slice(2, 8)}`)
  mkdirSync(snap)
  server.ckpt(0, 0, options, 'ref')
  await until(() => events.includes('prep ok'), 'PREP OK')
  return { captured: server.capture(0, snap), snap }
}

const sumTo = (n: number) => (n * (n + 1)) / 2

describe.each([
  ['sh', () => ['sh', LOOP, '20']],
  ['C', () => [cbin, '20']],
])('a %s program', (_name, argv) => {
  test('checkpoint, go on, then restart from the image', async () => {
    const p = shim(['--', ...argv()])
    await p.waitFor(/^rank 0 count 5$/)
    const work = join(dir, 'session', 'shim-ckpt', 'rank_0')
    expect(statSync(work).mode & 0o777).toBe(0o700)
    const { captured, snap } = await checkpoint()
    await captured
    expect(readdirSync(snap)).toEqual(['state'])
    const [i, sum] = readFileSync(join(snap, 'state'), 'utf8').trim().split(' ').map(Number)
    expect(i).toBeGreaterThanOrEqual(5)
    expect(sum).toBe(sumTo(i!))
    server.release(0, 'CONTINUE')
    const r = await p.done()
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`rank 0 done ${sumTo(20)}\n`)
    expect(events).toEqual(['linked 0', 'init', 'prep ok', 'fin', 'unlinked 0'])
    expect(existsSync(work)).toBe(false)

    restartDir = snap
    events = []
    const again = await shim(['--', ...argv()]).done()
    expect(again.code).toBe(0)
    expect(again.stdout).toStartWith(`rank 0 restarted at ${i}\nrank 0 count ${i! + 1}\n`)
    expect(again.stdout).toEndWith(`rank 0 done ${sumTo(20)}\n`)
  })
})

test('a restart copies the image, not the snapshot metadata, into OMPX_CKPT_DIR', async () => {
  restartDir = join(dir, 'image')
  mkdirSync(join(restartDir, 'sub'), { recursive: true })
  for (const f of ['state', 'sub/more', 'ompx-rank.json', 'done']) writeFileSync(join(restartDir, f), f)
  const r = await shim(['--', 'sh', '-c', 'cd "$OMPX_CKPT_DIR" && echo "$OMPX_RESTART $OMPX_RESTART_DIR" && find . -type f | sort']).done()
  expect(r.stdout).toBe(`1 ${restartDir}\n./state\n./sub/more\n`)
})

test('RELEASE TERM: the program is terminated and the shim exits 0', async () => {
  const p = shim(['--', 'sh', LOOP, '200'])
  await p.waitFor(/count 3$/)
  const { captured, snap } = await checkpoint(['term'])
  await captured
  expect(existsSync(join(snap, 'state'))).toBe(true)
  server.release(0, 'TERM')
  const r = await p.done()
  expect([r.code, r.signal]).toEqual([0, null])
  expect(r.stdout).not.toContain('done')
})

test('a program that traps the signal but never answers: DONE ERROR after --timeout', async () => {
  const p = shim(['--timeout', '0.5', '--', 'sh', LOOP, '200'], { CKPT_LOOP_IGNORE: '1' })
  await p.waitFor(/count 2$/)
  const { captured } = await checkpoint()
  await expect(captured).rejects.toThrow('the program did not create $OMPX_CKPT_DIR/done within 0.5 s after SIGUSR1; does it trap SIGUSR1?')
  server.abort(0, 'rank 0 failed')
  p.signal('SIGTERM')
  const r = await p.done()
  expect(r.signal).toBe('SIGTERM')
})

test('a program that does not trap the signal dies of it; the shim says so and dies the same way', async () => {
  const p = shim(['--', 'sh', '-c', 'echo up; exec sleep 30'])
  await p.waitFor(/^up$/)
  const { captured } = await checkpoint()
  await expect(captured).rejects.toThrow('the program ended (killed by SIGUSR1) before it created $OMPX_CKPT_DIR/done after SIGUSR1; does it trap SIGUSR1?')
  server.abort(0, 'rank 0 failed')
  const r = await p.done()
  expect([r.code, r.signal]).toEqual([null, 'SIGUSR1'])
})

test('--signal USR2 is what the program gets and sees in OMPX_CKPT_SIGNAL', async () => {
  const p = shim(['--signal', 'usr2', '--', 'sh', LOOP, '200'])
  await p.waitFor(/count 2$/)
  const { captured } = await checkpoint()
  await captured
  server.release(0, 'CONTINUE')
  p.signal('SIGTERM')
  expect((await p.done()).signal).toBe('SIGTERM')
})

describe('exit status and signals', () => {
  test('exit code, after FIN', async () => {
    const r = await shim(['--', 'sh', '-c', 'exit 7']).done()
    expect(r.code).toBe(7)
    expect(events).toEqual(['linked 0', 'init', 'fin', 'unlinked 0'])
  })

  test('a program killed by a signal: the shim dies of the same signal', async () => {
    const r = await shim(['--', 'sh', '-c', 'kill -SEGV $$']).done()
    expect(r.signal).toBe('SIGSEGV')
  })

  test('signals sent to the shim reach the program', async () => {
    const p = shim(['--', 'sh', join(FIXTURES, 'trap.sh')])
    await p.waitFor(/^ready 0$/)
    p.signal('SIGUSR2')
    await p.waitFor(/^usr2 0$/)
    p.signal('SIGTERM')
    const r = await p.done()
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('term 0\n')
  })

  test('the program does not see the coordinator variables; it sees its own', async () => {
    const r = await shim(['--', 'sh', '-c', 'echo "[$OMPX_COORD_SOCK][$OMPX_COORD_TOKEN][$OMPX_CKPT_SIGNAL][$OMPX_RESTART]"; echo "$OMPX_CKPT_DIR"']).done()
    const [vars, ckptDir] = r.stdout.trim().split('\n')
    expect(vars).toBe('[][][USR1][]')
    expect(ckptDir).toBe(join(dir, 'session', 'shim-ckpt', 'rank_0'))
  })
})

describe('without a usable coordinator', () => {
  test('not under ompx: one warning, the program runs plainly', async () => {
    const r = await shim(['--', 'sh', '-c', 'echo "ran $OMPX_CKPT_SIGNAL"; exit 3'], { OMPX_COORD_SOCK: undefined }).done()
    expect([r.code, r.stdout]).toEqual([3, 'ran USR1\n'])
    expect(r.stderr).toBe('ompx shim: warning: not started by ompx (OMPX_COORD_SOCK is unset): running the program without checkpoint support\n')
  })

  test('a refused HELLO: one line, exit 1, the program never starts', async () => {
    const r = await shim(['--', 'sh', '-c', 'echo started'], { OMPX_COORD_TOKEN: 'bad' }).done()
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toBe('ompx shim: cannot reach the app coordinator: the ompx daemon refused rank 0: bad token\n')
    expect(r.stdout).toBe('')
  })

  test('bad options: one line each', async () => {
    for (const args of [['--signal', 'KILL', '--', 'true'], ['--timeout', 'x', '--', 'true'], ['--bogus'], []]) {
      expect(userErrorProblems(await shim(args).done())).toEqual([])
    }
  })
})
