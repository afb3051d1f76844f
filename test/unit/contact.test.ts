/** HNP contact files: modes, atomic rewrite, stale detection, and every way a tool names an HNP. */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { ActionableError } from '../../src/errors'
import { sessionRoot } from '../../src/runtime/session'
import { newSecret } from '../../src/wire/secret'
import { contactPath, isLiveHnp, listContacts, readContact, removeContact, resolveHnp, writeContact, type HnpContact } from '../../src/wire/contact'

const oldTmp = process.env.TMPDIR
const oldSecret = process.env.OMPX_HNP_SECRET
const tmp = mkdtempSync(join(tmpdir(), 'ompx-contact-'))
let root = ''
const children: Subprocess[] = []

beforeAll(() => {
  process.env.TMPDIR = tmp
  root = sessionRoot()
  expect(root.startsWith(tmp)).toBe(true)
})
afterEach(() => {
  for (const f of existsSync(root) ? readdirSync(root) : []) rmSync(join(root, f), { force: true })
  delete process.env.OMPX_HNP_SECRET
})
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
  if (oldTmp === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = oldTmp
  if (oldSecret !== undefined) process.env.OMPX_HNP_SECRET = oldSecret
  rmSync(tmp, { recursive: true, force: true })
})

const me = (over: Partial<HnpContact> = {}): HnpContact => ({
  pid: process.pid,
  uri: 'tcp://127.0.1.1:4000',
  secret: newSecret(),
  started: Date.now(),
  jobs: [],
  version: '0.1.0',
  ...over,
})

/** A live process whose command line says "ompx" (as a real HNP's does). */
async function fakeHnp(): Promise<number> {
  const p = Bun.spawn(['bash', '-c', 'exec -a ompx-fake-hnp sleep 30'])
  children.push(p)
  // Wait for exec to be over: bash's own cmdline also contains "ompx" (its -c script), and while
  // the kernel swaps the image the cmdline reads empty, so a check in between would see no HNP.
  for (let i = 0; i < 400; i++) {
    if ((await Bun.file(`/proc/${p.pid}/cmdline`).text().catch(() => '')).startsWith('ompx-fake-hnp\0')) return p.pid
    await Bun.sleep(5)
  }
  throw new Error(`the fake HNP ${p.pid} never exec'd`)
}

async function deadPid(): Promise<number> {
  const p = Bun.spawn(['true'])
  await p.exited
  return p.pid
}

function errorOf(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ActionableError)
    expect((e as Error).message).not.toContain('\n')
    return (e as Error).message
  }
  throw new Error('expected an ActionableError')
}

describe('writeContact / removeContact', () => {
  test('file 0600 in a 0700 session dir, complete JSON, no temp files left', () => {
    const c = me({ jobs: ['1.1'] })
    const path = writeContact(c)
    expect(path).toBe(join(root, `hnp-${process.pid}.json`))
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(root).mode & 0o777).toBe(0o700)
    expect(readContact(path)).toEqual({ ...c, exe: process.execPath })
    writeContact({ ...c, jobs: ['1.1', '1.2'] })
    expect(readContact(path).jobs).toEqual(['1.1', '1.2'])
    expect(readdirSync(root)).toEqual([`hnp-${process.pid}.json`])
    removeContact(process.pid)
    expect(existsSync(path)).toBe(false)
    removeContact(process.pid) // twice is fine
  })
})

describe('listContacts', () => {
  test('keeps live HNPs, deletes files of dead pids and of pids reused by non-ompx processes', async () => {
    writeContact(me())
    const dead = await deadPid()
    writeContact(me({ pid: dead }))
    const sleeper = Bun.spawn(['sleep', '30'])
    children.push(sleeper)
    writeContact(me({ pid: sleeper.pid }))
    writeFileSync(join(root, 'hnp-999999999.json'), '{ not json')
    const live = listContacts()
    expect(live.map((c) => c.pid)).toEqual([process.pid])
    expect(existsSync(contactPath(dead))).toBe(false)
    expect(existsSync(contactPath(sleeper.pid))).toBe(false)
    // Unreadable files are skipped, not deleted: they are not ours to judge.
    expect(existsSync(join(root, 'hnp-999999999.json'))).toBe(true)
  })

  test('isLiveHnp: cmdline containing ompx, or the recorded executable', async () => {
    expect(isLiveHnp({ pid: process.pid, exe: process.execPath })).toBe(true)
    expect(isLiveHnp({ pid: process.pid, exe: '/bin/sh' })).toBe(process.argv.join(' ').includes('ompx'))
    expect(isLiveHnp({ pid: await fakeHnp() })).toBe(true)
    expect(isLiveHnp({ pid: await deadPid() })).toBe(false)
  })
})

describe('resolveHnp', () => {
  test('no HNP running', () => {
    expect(errorOf(() => resolveHnp())).toBe('no running ompx HNP found (start one with ompx run or ompx hnp)')
  })

  test('the only live HNP, by default and by pid', () => {
    const c = me()
    const path = writeContact(c)
    expect(resolveHnp()).toEqual({ uri: c.uri, secret: c.secret, pid: process.pid, path })
    expect(resolveHnp(process.pid)).toEqual(resolveHnp())
    expect(resolveHnp(String(process.pid))).toEqual(resolveHnp())
  })

  test('several HNPs: an error listing them; a pid picks one', async () => {
    const other = await fakeHnp()
    writeContact(me({ jobs: ['7.1'], started: 1000 }))
    writeContact(me({ pid: other, uri: 'tcp://127.0.1.1:5000', started: 2000 }))
    expect(errorOf(() => resolveHnp())).toMatch(
      new RegExp(`^several HNPs are running: ${process.pid} \\(started .+, jobs 7\\.1\\), ${other} \\(started .+, jobs none\\); pass one pid$`),
    )
    expect(resolveHnp(other).uri).toBe('tcp://127.0.1.1:5000')
  })

  test('a pid that is not an HNP', async () => {
    writeContact(me())
    const dead = await deadPid()
    expect(errorOf(() => resolveHnp(dead))).toMatch(new RegExp(`^process ${dead} is not a running ompx HNP \\(running: ${process.pid} `))
  })

  test('a contact file path', () => {
    const c = me({ pid: 1 }) // another host's HNP, say: no liveness check for an explicit file
    const path = join(tmp, 'copied.json')
    writeFileSync(path, JSON.stringify(c))
    expect(resolveHnp(path)).toEqual({ uri: c.uri, secret: c.secret, pid: 1, path })
    expect(errorOf(() => resolveHnp(join(tmp, 'nope.json')))).toMatch(/is neither a pid, a URI \(tcp:\/\/host:port\) nor an HNP contact file/)
    writeFileSync(path, '{"pid": 1}')
    expect(errorOf(() => resolveHnp(path))).toMatch(/is not an ompx HNP contact file/)
  })

  test('a URI: secret from a matching contact file, else OMPX_HNP_SECRET, else advice', () => {
    const c = me()
    writeContact(c)
    expect(resolveHnp(c.uri).secret).toBe(c.secret)
    const uri = 'tcp://10.0.0.5:4000'
    expect(errorOf(() => resolveHnp(uri))).toMatch(/give its job secret in OMPX_HNP_SECRET/)
    process.env.OMPX_HNP_SECRET = 'not-a-secret'
    expect(errorOf(() => resolveHnp(uri))).toMatch(/must be 64 hex digits/)
    const secret = newSecret()
    process.env.OMPX_HNP_SECRET = `${secret}\n`
    expect(resolveHnp(uri)).toEqual({ uri, secret })
  })
})
