/**
 * The SDK in real rank processes (test/fixtures/ckpt-app.ts) against an in-test AppServer:
 * checkpoints are answered from a CPU-bound loop that only awaits yieldToRuntime(), a
 * checkpoint + terminate + restart gives the same checksum as an undisturbed run, and an app
 * that never calls finalize() still exits.
 */
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppServer, type AppRequest } from '../../src/orted/snapc/app-server'
import { FIXTURES, REPO } from '../helpers'

setDefaultTimeout(60_000)
const APP = join(FIXTURES, 'ckpt-app.ts')
const ARGS = ['--iters', '80', '--mb', '2', '--sleep-ms', '5']

let dir: string
let server: AppServer | null
let procs: Bun.Subprocess<'ignore', 'pipe', 'pipe'>[]
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ompx-app-proc-'))
  server = null
  procs = []
})
afterEach(() => {
  for (const p of procs) p.kill('SIGKILL')
  server?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A job of `size` ranks on one AppServer, each rank a real process. */
async function job(size: number, argv: (rank: number) => string[], restart: (rank: number) => string | null = () => null) {
  const kv = new Map<string, Uint8Array>()
  const gets = new Map<string, [number, number][]>()
  const inits: [number, number][] = []
  const preps: string[] = []
  const path = join(dir, `app-${Math.random().toString(36).slice(2)}.sock`)
  const srv = await AppServer.listen({
    path,
    token: (r) => (r < size ? `t${r}` : undefined),
    restartDir: restart,
    events: {
      linked() {},
      unlinked() {},
      prep: (r, st) => void preps.push(`${r} ${st}`),
      request(r: number, q: AppRequest) {
        if (q.op === 'init') {
          inits.push([r, q.id])
          if (inits.length === size) for (const [rr, id] of inits) srv.reply(rr, id, true)
        } else if (q.op === 'put') {
          kv.set(q.key!, q.value!)
          for (const [rr, id] of gets.get(q.key!) ?? []) srv.reply(rr, id, true, q.value)
          gets.delete(q.key!)
          srv.reply(r, q.id, true)
        } else if (q.op === 'get') {
          const v = kv.get(q.key!)
          if (v) srv.reply(r, q.id, true, v)
          else gets.set(q.key!, [...(gets.get(q.key!) ?? []), [r, q.id]])
        } else srv.reply(r, q.id, true)
      },
    },
  })
  server = srv
  const ranks = Array.from({ length: size }, (_, r) => {
    const env = { ...process.env, OMPX_COORD_SOCK: path, OMPX_COORD_TOKEN: `t${r}`, OMPX_RANK: `${r}`, OMPX_SIZE: `${size}` }
    const p = Bun.spawn([process.execPath, ...argv(r)], { env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
    procs.push(p)
    let out = ''
    const pump = (async () => {
      for await (const c of p.stdout) out += new TextDecoder().decode(c)
    })()
    return { p, out: () => out, done: pump.then(() => p.exited).then(() => out) }
  })
  return { srv, ranks, preps }
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(10)
  }
}

const checksum = (out: string) => out.match(/^rank \d+ checksum ([0-9a-f]{8})$/m)?.[1]

test('checkpoint with --term, restart: same checksums as an undisturbed run', async () => {
  const plain = await job(2, () => [APP, ...ARGS])
  const want = await Promise.all(plain.ranks.map((r) => r.done.then(checksum)))
  expect(want[0]).toMatch(/^[0-9a-f]{8}$/)
  expect(want[0]).not.toBe(want[1])
  plain.srv.close()

  const first = await job(2, () => [APP, ...ARGS])
  await until(() => first.ranks.every((r) => /iter 20$/m.test(r.out())), 'iteration 20')
  for (const r of [0, 1]) first.srv.ckpt(r, 0, ['term'], 'ref')
  await until(() => first.preps.length === 2, 'PREP of both ranks')
  expect(first.preps.sort()).toEqual(['0 ok', '1 ok'])
  const snap = (r: number) => join(dir, 'snap', `rank_${r}`)
  for (const r of [0, 1]) mkdirSync(snap(r), { recursive: true })
  await Promise.all([0, 1].map((r) => first.srv.capture(r, snap(r))))
  expect(readdirSync(snap(0)).sort()).toEqual(['meta.json', 'state.bin'])
  const { iter } = JSON.parse(readFileSync(join(snap(1), 'meta.json'), 'utf8'))
  expect(iter).toBeGreaterThanOrEqual(20)
  expect(iter).toBeLessThan(80)
  for (const r of [0, 1]) first.srv.release(r, 'TERM')
  const outs = await Promise.all(first.ranks.map((r) => r.done))
  expect(first.ranks.map((r) => r.p.exitCode)).toEqual([0, 0])
  expect(outs.map(checksum)).toEqual([undefined, undefined])
  first.srv.close()

  const again = await job(2, () => [APP, ...ARGS], snap)
  expect(await Promise.all(again.ranks.map((r) => r.done.then(checksum)))).toEqual(want)
})

test('a checkpoint that continues changes nothing either', async () => {
  const want = checksum(await (await job(1, () => [APP, ...ARGS])).ranks[0]!.done)
  server!.close()
  const j = await job(1, () => [APP, ...ARGS])
  await until(() => /iter 30$/m.test(j.ranks[0]!.out()), 'iteration 30')
  j.srv.ckpt(0, 0, [], 'ref')
  await until(() => j.preps.length === 1, 'PREP')
  mkdirSync(join(dir, 'c'))
  await j.srv.capture(0, join(dir, 'c'))
  j.srv.release(0, 'CONTINUE')
  expect(checksum(await j.ranks[0]!.done)).toBe(want)
})

test('an app that never calls finalize() exits when its code ends', async () => {
  const script = join(dir, 'no-fin.ts')
  writeFileSync(script, `import * as app from '${join(REPO, 'src/app')}'\nawait app.init()\nconsole.log('inited', app.rank, app.size)\n`)
  const j = await job(1, () => [script])
  const t0 = Date.now()
  expect(await j.ranks[0]!.done).toBe('inited 0 1\n')
  expect(j.ranks[0]!.p.exitCode).toBe(0)
  expect(Date.now() - t0).toBeLessThan(5000)
})
