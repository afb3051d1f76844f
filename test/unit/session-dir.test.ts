/**
 * The session directory ($TMPDIR/ompx-<user>) is checked with lstat before anything is written
 * into it: a symbolic link planted by another user, a directory owned by someone else, or one
 * that others can write to is refused with one line naming the path and the problem; one that
 * others can only read is tightened to 0700. TMPDIR points at a scratch directory per test.
 */
import { afterEach, beforeEach, expect, test } from 'bun:test'
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { createJobDir, sessionRoot, userName } from '../../src/runtime/session'

let scratch: string
let savedTmp: string | undefined
let planted: string

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'ompx-sess-'))
  savedTmp = process.env.TMPDIR
  process.env.TMPDIR = scratch
  planted = join(scratch, `ompx-${userName()}`)
})
afterEach(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = savedTmp
  rmSync(scratch, { recursive: true, force: true })
})

function refusal(): string {
  try {
    sessionRoot()
  } catch (err) {
    expect(err).toBeInstanceOf(ActionableError)
    const msg = (err as Error).message
    expect(msg).not.toContain('\n')
    expect(msg).toContain(planted)
    return msg
  }
  throw new Error('sessionRoot() accepted the directory')
}

test('a fresh session directory is created 0700 and reused', () => {
  expect(sessionRoot()).toBe(planted)
  expect(lstatSync(planted).mode & 0o777).toBe(0o700)
  expect(sessionRoot()).toBe(planted)
  expect(lstatSync(createJobDir('1.0')).mode & 0o777).toBe(0o700)
})

test('a symbolic link is refused and its target left alone', () => {
  const target = join(scratch, 'elsewhere')
  mkdirSync(target, { mode: 0o755 })
  chmodSync(target, 0o755)
  symlinkSync(target, planted)
  expect(refusal()).toContain('is a symbolic link')
  expect(lstatSync(target).mode & 0o777).toBe(0o755)
  expect(() => createJobDir('1.0')).toThrow(ActionableError)
})

test('a dangling symbolic link is refused too', () => {
  symlinkSync(join(scratch, 'nowhere'), planted)
  expect(refusal()).toContain('is a symbolic link')
})

test('a file in its place is refused', () => {
  writeFileSync(planted, 'x')
  expect(refusal()).toContain('is not a directory')
})

test('a directory writable by others (0777) is refused, not tightened', () => {
  mkdirSync(planted)
  chmodSync(planted, 0o777)
  expect(refusal()).toContain('writable by other users (mode 0777)')
  expect(lstatSync(planted).mode & 0o777).toBe(0o777)
})

test('a directory others can only read (0755) is tightened to 0700', () => {
  mkdirSync(planted)
  chmodSync(planted, 0o755)
  expect(sessionRoot()).toBe(planted)
  expect(lstatSync(planted).mode & 0o777).toBe(0o700)
})

test.skipIf(process.getuid?.() !== 0)('a directory owned by another user is refused (as root: chown to nobody)', () => {
  mkdirSync(planted, { mode: 0o700 })
  chownSync(planted, 65534, 65534)
  expect(refusal()).toContain('belongs to uid 65534')
})
