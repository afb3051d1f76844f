/**
 * The cross-process memory of a passing `criu check` (src/criu/check-cache.ts): remembered per
 * binary, forgotten when the binary (or the real criu behind a wrapper) changes.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cachedPass, rememberPass } from '../../plugins/crs/criu/check-cache'

const dir = mkdtempSync(join(tmpdir(), 'ompx-criu-cache-'))
const saved = process.env.TMPDIR
beforeAll(() => {
  process.env.TMPDIR = dir // the session root (and so the cache file) lives under TMPDIR
})
afterAll(() => {
  if (saved === undefined) delete process.env.TMPDIR
  else process.env.TMPDIR = saved
  rmSync(dir, { recursive: true, force: true })
})

test('a pass is remembered, and forgotten when the binary changes', () => {
  const bin = join(dir, 'criu')
  writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 })
  expect(cachedPass(bin)).toBeNull()
  rememberPass(bin, '4.2.1')
  expect(cachedPass(bin)).toBe('4.2.1')
  const st = statSync(bin)
  utimesSync(bin, st.atime, new Date(st.mtimeMs + 5000))
  expect(cachedPass(bin)).toBeNull()
})

test('behind an install-criu.sh wrapper, a new real criu invalidates the pass', () => {
  const real = join(dir, 'real-criu')
  writeFileSync(real, 'x', { mode: 0o755 })
  const wrapper = join(dir, 'wrapper')
  writeFileSync(wrapper, `#!/bin/sh\nexec "/x/ld-linux-x86-64.so.2" --library-path "/x" "${real}" "$@"\n`, { mode: 0o755 })
  rememberPass(wrapper, '4.1.1')
  expect(cachedPass(wrapper)).toBe('4.1.1')
  const st = statSync(real)
  utimesSync(real, st.atime, new Date(st.mtimeMs + 5000))
  expect(cachedPass(wrapper)).toBeNull()
})
