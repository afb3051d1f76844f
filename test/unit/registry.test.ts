import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError, PluginError } from '../../src/errors'
import { registerCoreParams } from '../../src/params/core'
import { Params } from '../../src/params/params'
import { Registry, callPlugin } from '../../src/plugins/registry'
import { createRuntime } from '../../src/commands/_context'
import { BUILTIN_PLUGINS } from '../../plugins/builtin'

const root = mkdtempSync(join(tmpdir(), 'ompx-registry-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const SOURCES = {
  // A working mapper written in TypeScript (types only, no imports: external plugins are self-contained).
  'mapper-first.ts': `
    interface Host { param(key: string): string | undefined }
    export default (host: Host) => ({
      kind: 'mapper' as const, name: 'first', priority: 100, description: 'everything on the first node',
      params: [{ key: 'mapper_first_node', description: 'node index', default: '0' }],
      map(req: { allocation: { nodes: { name: string }[] }; apps: { index: number; np?: number }[] }) {
        const node = req.allocation.nodes[Number(host.param('mapper_first_node'))]!.name
        let rank = 0
        return req.apps.flatMap((a) => Array.from({ length: a.np ?? 1 }, () => ({ rank: rank++, app: a.index, node })))
      },
    })`,
  // A working crs in plain JavaScript, async factory.
  'crs-mine.js': `export default async (host) => ({ kind: 'crs', name: 'mine', priority: 60,
      description: 'test crs', needsApp: false, notCheckpointable: () => host.param('crs_mine_reason') ?? null, capture: async () => ({}) })`,
  'broken.ts': `throw new Error('exploded while importing')`,
  'garbage.mjs': `export default () => 'not a plugin'`,
}

let n = 0
function dirWith(files: Record<string, string>): string {
  const dir = join(root, `d${++n}`)
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  mkdirSync(dir, { recursive: true })
  return dir
}

function params(o: { env?: Record<string, string>; cli?: [string, string][] } = {}): Params {
  const home = join(root, `home${++n}`)
  mkdirSync(home, { recursive: true })
  const p = new Params({ home, cwd: home, env: o.env ?? {}, cli: o.cli })
  registerCoreParams(p)
  return p
}

/** execPath in an empty dir so <binary dir>/plugins never picks up anything real. */
const load = (p: Params, pluginDirs: string[] = []) => Registry.load({ params: p, pluginDirs, execPath: join(root, 'bin', 'ompx'), builtins: BUILTIN_PLUGINS })

describe('external plugins', () => {
  test('good files load, broken ones are failures with file and reason', async () => {
    const dir = dirWith(SOURCES)
    const reg = await load(params(), [dir])
    const first = reg.entry('mapper', 'first')!
    expect(first.source).toBe(join(dir, 'mapper-first.ts'))
    expect(reg.entry('crs', 'mine')!.source).toBe(join(dir, 'crs-mine.js'))
    expect(reg.failures).toEqual([
      { file: join(dir, 'broken.ts'), reason: 'import failed: exploded while importing' },
      { file: join(dir, 'garbage.mjs'), reason: expect.stringContaining('factory returned a string') },
    ])
    // Built-ins are still there.
    expect(reg.list('mapper').map((e) => e.name)).toEqual(expect.arrayContaining(['first', 'slot', 'node', 'ppr', 'seq']))
    expect(reg.get('crs', 'none')).toBeDefined()
  })

  test('the loaded mapper works and reads its own registered param', async () => {
    const p = params({ cli: [['mapper_first_node', '1']] })
    const reg = await load(p, [dirWith({ 'm.ts': SOURCES['mapper-first.ts'] })])
    expect(p.value('mapper_first_node')!.def.owner).toBe('mapper:first')
    expect(p.unknownKeys()).toEqual([])
    const placements = reg.get('mapper', 'first')!.map({
      allocation: { nodes: [{ name: 'a', slots: 1 }, { name: 'b', slots: 1 }], source: 'test' },
      apps: [{ index: 0, np: 2, argv: ['x'], env: {}, cwd: '/' }],
      oversubscribe: false,
    })
    expect(placements.map((pl) => pl.node)).toEqual(['b', 'b'])
  })

  test('search order: OMPX_PLUGIN_PATH, plugin_path param and <dir>/<kind>/ subdirs', async () => {
    const envDir = dirWith({ 'crs-mine.js': SOURCES['crs-mine.js'] })
    const paramDir = dirWith({ 'mapper/first.ts': SOURCES['mapper-first.ts'], 'notakind/x.ts': SOURCES['broken.ts'] })
    const reg = await load(params({ env: { OMPX_PLUGIN_PATH: `/nonexistent:${envDir}` }, cli: [['plugin_path', paramDir]] }))
    expect(reg.entry('crs', 'mine')!.source).toBe(join(envDir, 'crs-mine.js'))
    expect(reg.entry('mapper', 'first')!.source).toBe(join(paramDir, 'mapper', 'first.ts'))
    expect(reg.failures).toEqual([]) // missing implicit dirs are silent; notakind/ is not scanned
    expect(reg.dirs.map((d) => d.origin)).toEqual(['OMPX_PLUGIN_PATH', 'OMPX_PLUGIN_PATH', 'plugin_path', 'binary', 'home'])
  })

  test('a missing --plugin-dir is reported, not fatal', async () => {
    const reg = await load(params(), [join(root, 'no-such-dir')])
    expect(reg.failures).toEqual([{ file: join(root, 'no-such-dir'), reason: 'no such directory' }])
  })

  test('an array factory keeps its valid plugins and reports the invalid one', async () => {
    const dir = dirWith({
      'two.js': `export default () => [
        { kind: 'crs', name: 'ok', priority: 1, notCheckpointable: () => null, capture: async () => ({}) },
        { kind: 'crs', name: 'bad', priority: 1 },
        { kind: 'scheduler', name: 'x', priority: 1 }]`,
    })
    const reg = await load(params(), [dir])
    expect(reg.get('crs', 'ok')).toBeDefined()
    expect(reg.failures.map((f) => f.reason)).toEqual([
      'plugin #2: crs plugin "bad" has no notCheckpointable() function',
      'plugin #3: kind "scheduler" is not one of crs, mapper, transport, launcher, sstore',
    ])
  })

  test('an external plugin overrides the built-in of the same kind and name', async () => {
    const dir = dirWith({ 'none.js': `export default () => ({ kind: 'crs', name: 'none', priority: 0, description: 'mine', notCheckpointable: () => 'custom', capture: async () => ({}) })` })
    const reg = await load(params(), [dir])
    const e = reg.entry('crs', 'none')!
    expect(e).toMatchObject({ source: join(dir, 'none.js'), overrides: 'built-in', description: 'mine' })
    expect(e.plugin.notCheckpointable()).toBe('custom')
    expect(reg.list('crs').filter((x) => x.name === 'none')).toHaveLength(1)
  })
})

describe('select', () => {
  const dir = dirWith({ 'crs-mine.js': SOURCES['crs-mine.js'] })

  test('by name, by the <kind> param, else by priority', async () => {
    expect((await load(params(), [dir])).select('crs').name).toBe('mine') // priority 60 > none's 50
    expect((await load(params({ cli: [['crs', 'none']] }), [dir])).select('crs').name).toBe('none')
    expect((await load(params({ cli: [['crs', 'none']] }), [dir])).select('crs', 'mine').name).toBe('mine')
    expect((await load(params())).select('mapper').name).toBe('slot')
  })

  test('unknown name is an ActionableError listing what is available', async () => {
    const reg = await load(params())
    expect(() => reg.select('mapper', 'foo')).toThrow(
      new ActionableError('no mapper plugin named "foo" (available: node, ppr, seq, slot)'),
    )
    const viaEnv = await load(params({ env: { OMPX_MCA_crs: 'dmtcp' } }))
    expect(() => viaEnv.select('crs')).toThrow('no crs plugin named "dmtcp" (set by OMPX_MCA_crs; available: criu, none, self)')
  })

  test('crs none explains why a job is not checkpointable', async () => {
    expect((await load(params())).select('crs', 'none').notCheckpointable()).toMatch(/crs 'none' is selected.*--mca crs self/)
  })
})

describe('callPlugin', () => {
  const who = { kind: 'mapper', name: 'x' }
  test('wraps sync and async errors as PluginError tagged [kind:name]', async () => {
    expect(() => callPlugin(who, () => { throw new Error('bad') })).toThrow(new PluginError('mapper', 'x', 'bad'))
    expect(() => callPlugin(who, () => { throw new Error('bad') })).toThrow('[mapper:x] bad')
    await expect(callPlugin(who, async () => { throw new Error('later') })).rejects.toThrow('[mapper:x] later')
    expect(callPlugin(who, () => 7)).toBe(7)
  })
  test('user errors pass through untouched', () => {
    expect(() => callPlugin(who, () => { throw new ActionableError('too many ranks') })).toThrow(new ActionableError('too many ranks'))
  })
})

test('createRuntime builds params and registry from a scanned command line', async () => {
  const home = join(root, 'rt-home')
  mkdirSync(home, { recursive: true })
  const dir = dirWith({ 'crs-mine.js': SOURCES['crs-mine.js'] })
  const scanned = { opts: { mca: [['kill_grace', '2']] as [string, string][], 'plugin-dir': [dir] }, rest: [], help: false, dashdash: false }
  const { params: p, registry } = await createRuntime(scanned, { home, cwd: home, env: {}, execPath: join(root, 'bin', 'x') })
  expect(p.getNumber('kill_grace')).toBe(2)
  expect(registry.select('crs').name).toBe('mine')
  await expect(createRuntime({ ...scanned, opts: { mca: [['kill_grace', 'x']] } }, { home, cwd: home, env: {} })).rejects.toThrow(
    /kill_grace must be a number/,
  )
})
