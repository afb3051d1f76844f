/** `ompx plugins` and `ompx info` against the compiled binary (OMPX_BIN or dist/ompx). */
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lines, ompx, userErrorProblems, type RunOpts } from '../helpers'

const root = mkdtempSync(join(tmpdir(), 'ompx-e2e-plugins-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function dirWith(name: string, files: Record<string, string>): string {
  const dir = join(root, name)
  mkdirSync(dir, { recursive: true })
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text)
  return dir
}

// A TypeScript mapper (type annotations must work inside the compiled binary) and a JS crs.
const tsDir = dirWith('ts', {
  'rev.ts': `interface Host { version: string }
    export default (host: Host) => ({ kind: 'mapper' as const, name: 'reverse', priority: 3,
      description: 'reverse on ' + host.version, params: [{ key: 'mapper_reverse_step', description: 'step', default: '1' }],
      map: () => [] })`,
})
const jsDir = dirWith('js', {
  'mine.js': `export default (host) => ({ kind: 'crs', name: 'mine', priority: 7, description: 'js crs', needsApp: false, notCheckpointable: () => null, capture: async () => ({}) })`,
})
const brokenDir = dirWith('broken', { 'bad.ts': `throw new Error('exploded at import')` })
const home = dirWith('home', {})
const cwd = dirWith('cwd', {})

/** Isolated from the user's ~/.ompx, params files and OMPX_* settings. */
function run(args: string[], env: Record<string, string | undefined> = {}, opts: RunOpts = {}) {
  return ompx(args, { cwd, ...opts, env: { HOME: home, OMPX_PLUGIN_PATH: undefined, ...env } })
}

describe('ompx plugins', () => {
  test('--json lists built-ins and plugins from --plugin-dir and OMPX_PLUGIN_PATH', async () => {
    const r = await run(['plugins', '--json', '--plugin-dir', tsDir], { OMPX_PLUGIN_PATH: jsDir })
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) // nothing but JSON on stdout
    const ids = out.plugins.map((p: { kind: string; name: string }) => `${p.kind}:${p.name}`)
    expect(ids).toEqual(expect.arrayContaining(['crs:none', 'mapper:slot', 'mapper:node', 'mapper:ppr', 'mapper:seq', 'launcher:local']))
    expect(out.plugins).toContainEqual(expect.objectContaining({ kind: 'mapper', name: 'reverse', priority: 3, source: join(tsDir, 'rev.ts') }))
    expect(out.plugins).toContainEqual(expect.objectContaining({ kind: 'crs', name: 'mine', source: join(jsDir, 'mine.js') }))
    expect(out.plugins.find((p: { name: string }) => p.name === 'none').source).toBe('built-in')
    expect(out.failures).toEqual([])
  })

  test('--kind filters; a bad kind is a one-line error', async () => {
    const r = await run(['plugins', '--json', '--kind', 'crs'])
    expect(JSON.parse(r.stdout).plugins.every((p: { kind: string }) => p.kind === 'crs')).toBe(true)
    const bad = await run(['plugins', '--kind', 'bogus'])
    expect(userErrorProblems(bad)).toEqual([])
    expect(bad.stderr).toContain('unknown plugin kind "bogus"')
  })

  test('a broken plugin is a warning naming file and reason, never fatal', async () => {
    const r = await run(['info', '--plugin-dir', brokenDir, '--plugin-dir', tsDir])
    expect(r.code).toBe(0)
    const warnings = r.stderr.split('\n').filter((l) => l.includes('bad.ts'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/warning: .*bad\.ts not loaded: import failed: exploded at import/)
    expect(r.stdout).toMatch(/mapper 5/) // the good plugin next to it still loaded

    const table = await run(['plugins', '--plugin-dir', brokenDir])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/not loaded \(1\):\n\s+\S+bad\.ts: import failed: exploded at import/)
  })
})

describe('ompx info', () => {
  test('shows version, search path and counts', async () => {
    const r = await run(['info', '--plugin-dir', tsDir])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^ompx \d+\.\d+\.\d+/)
    expect(r.stdout).toContain(`${tsDir}  (--plugin-dir; 1 files)`)
    expect(r.stdout).toContain(join(home, '.ompx', 'plugins'))
    const json = JSON.parse((await run(['info', '--json'])).stdout)
    expect(json.plugins).toMatchObject({ crs: 3, mapper: 4, launcher: 3, transport: 2, sstore: 2 })
  })

  test('--param shows value and source: cli, env, file, default', async () => {
    const fileCwd = dirWith('withfile', { 'ompx-params.conf': '# test\ncrs = none\n' })
    const r = await run(['info', '--param', '--json', '--mca', 'kill_grace', '9'], { OMPX_MCA_errmgr_continue: '1' }, { cwd: fileCwd })
    expect(r.code).toBe(0)
    const byKey = Object.fromEntries(JSON.parse(r.stdout).map((p: { key: string }) => [p.key, p]))
    expect(byKey.kill_grace).toMatchObject({ value: '9', source: 'cli' })
    expect(byKey.errmgr_continue).toMatchObject({ value: '1', source: 'env', origin: 'OMPX_MCA_errmgr_continue' })
    expect(byKey.crs).toMatchObject({ value: 'none', source: 'file', origin: join(fileCwd, 'ompx-params.conf') })
    expect(byKey.transport).toMatchObject({ value: '', source: 'default' })

    const text = await run(['info', '--param', '--mca', 'kill_grace', '9'], { OMPX_MCA_errmgr_continue: '1' })
    expect(text.stdout).toMatch(/^kill_grace\s+9\s+cli\s/m)
    expect(text.stdout).toMatch(/^errmgr_continue\s+1\s+env\s/m)
  })

  test('--param <kind> keeps only that kind, including plugin params', async () => {
    const r = await run(['info', '--param', 'mapper', '--plugin-dir', tsDir])
    const keys = lines(r.stdout).slice(1).map((l) => l.split(/\s+/)[0])
    expect(keys).toEqual(['mapper', 'mapper_reverse_step'])
  })

  test('an unknown --mca key warns once; a malformed params file is a one-line error', async () => {
    const r = await run(['info', '--mca', 'mapperr', 'node'])
    expect(r.code).toBe(0)
    expect(r.stderr.match(/unknown MCA parameter "mapperr"/g)).toHaveLength(1)
    const badCwd = dirWith('badfile', { 'ompx-params.conf': 'kill_grace 3\n' })
    const bad = await run(['info'], {}, { cwd: badCwd })
    expect(userErrorProblems(bad)).toEqual([])
    expect(bad.stderr).toContain(`${join(badCwd, 'ompx-params.conf')}:1:`)
  })

  test('an unknown flag exits non-zero with one line', async () => {
    for (const cmd of ['info', 'plugins']) {
      const r = await run([cmd, '--no-such-flag'])
      expect(userErrorProblems(r)).toEqual([])
      expect(r.stderr).toContain('unknown option --no-such-flag')
    }
  })
})
