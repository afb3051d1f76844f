import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ActionableError } from '../../src/errors'
import { checkTypedParams, registerCoreParams } from '../../src/params/core'
import { parseParamsFile } from '../../src/params/file'
import { Params, type ParamsOptions } from '../../src/params/params'

const root = mkdtempSync(join(tmpdir(), 'ompx-params-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let n = 0
/** A fresh home and cwd, optionally with params files, and no environment unless given. */
function setup(o: { home?: string; cwd?: string; env?: Record<string, string>; cli?: [string, string][] } = {}) {
  const home = join(root, `home${++n}`)
  const cwd = join(root, `cwd${n}`)
  mkdirSync(join(home, '.ompx'), { recursive: true })
  mkdirSync(cwd, { recursive: true })
  if (o.home !== undefined) writeFileSync(join(home, '.ompx', 'mca-params.conf'), o.home)
  if (o.cwd !== undefined) writeFileSync(join(cwd, 'ompx-params.conf'), o.cwd)
  const opts: ParamsOptions = { home, cwd, env: o.env ?? {}, cli: o.cli }
  const p = new Params(opts)
  p.register({ key: 'kill_grace', description: 'grace', default: '5', type: 'number' })
  return { p, home, cwd }
}

describe('precedence: default < home file < cwd file < env < --mca', () => {
  const cases: { name: string; setup: Parameters<typeof setup>[0]; value: string; source: string }[] = [
    { name: 'default', setup: {}, value: '5', source: 'default' },
    { name: 'home file', setup: { home: 'kill_grace = 6\n' }, value: '6', source: 'file' },
    { name: 'cwd file beats home', setup: { home: 'kill_grace = 6', cwd: 'kill_grace = 7' }, value: '7', source: 'file' },
    {
      name: 'env beats files',
      setup: { home: 'kill_grace = 6', cwd: 'kill_grace = 7', env: { OMPX_MCA_kill_grace: '8' } },
      value: '8',
      source: 'env',
    },
    {
      name: 'cli beats env',
      setup: { cwd: 'kill_grace = 7', env: { OMPX_MCA_kill_grace: '8' }, cli: [['kill_grace', '9']] },
      value: '9',
      source: 'cli',
    },
    {
      name: 'last --mca wins',
      setup: { cli: [['kill_grace', '9'], ['kill_grace', '10']] },
      value: '10',
      source: 'cli',
    },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const { p } = setup(c.setup)
      expect(p.get('kill_grace')).toBe(c.value)
      expect(p.value('kill_grace')!.source).toBe(c.source as never)
    })
  }

  test('file source names the file it came from', () => {
    const { p, home } = setup({ home: 'kill_grace = 6', cwd: '# nothing here\n' })
    expect(p.value('kill_grace')!.origin).toBe(join(home, '.ompx', 'mca-params.conf'))
    const other = setup({ cwd: 'kill_grace = 7' })
    expect(other.p.value('kill_grace')!.origin).toBe(join(other.cwd, 'ompx-params.conf'))
  })

  test('env variables other than OMPX_MCA_<key> are ignored', () => {
    const { p } = setup({ env: { KILL_GRACE: '1', OMPX_MCA_: 'x', 'OMPX_MCA_bad-key': 'y' } })
    expect(p.get('kill_grace')).toBe('5')
    expect(p.unknownKeys()).toEqual([])
  })
})

describe('params file format', () => {
  test('comments, blank lines, spaces and quotes', () => {
    const text = '# comment\n\n  mapper=node  \ncrs = "self"\nplugin_path = \n  # indented comment\n'
    expect(parseParamsFile(text, 'f.conf').map((s) => [s.key, s.value, s.line])).toEqual([
      ['mapper', 'node', 3],
      ['crs', 'self', 4],
      ['plugin_path', '', 5],
    ])
  })

  test.each([
    ['mapper node', /f\.conf:2: expected "key = value"/],
    ['= node', /f\.conf:2: "" is not a parameter name/],
    ['my key = 1', /f\.conf:2: "my key" is not a parameter name/],
  ])('malformed line %p names file:line', (line, re) => {
    expect(() => parseParamsFile(`ok = 1\n${line}\n`, 'f.conf')).toThrow(re)
  })

  test('a malformed file stops construction with an ActionableError', () => {
    let err: unknown
    try {
      setup({ cwd: 'kill_grace 5' })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ActionableError)
    expect((err as Error).message).toMatch(/ompx-params\.conf:1: expected "key = value"/)
  })

  test('bad --mca key is an ActionableError', () => {
    expect(() => setup({ cli: [['no-dashes', '1']] })).toThrow(ActionableError)
  })
})

describe('typed getters', () => {
  test.each([
    ['1', true], ['true', true], ['YES', true], ['on', true],
    ['0', false], ['false', false], ['no', false], ['Off', false], ['', false],
  ])('getBool(%p) = %p', (v, want) => {
    expect(setup({ cli: [['flag', v]] }).p.getBool('flag')).toBe(want)
  })

  test('getBool of an unset key is false; a junk value names its source', () => {
    expect(setup().p.getBool('flag')).toBe(false)
    expect(() => setup({ env: { OMPX_MCA_flag: 'maybe' } }).p.getBool('flag')).toThrow(/flag must be a boolean.*OMPX_MCA_flag/)
  })

  test('getNumber parses, falls back, and rejects junk', () => {
    expect(setup().p.getNumber('kill_grace')).toBe(5)
    expect(setup({ cli: [['kill_grace', ' 2.5 ']] }).p.getNumber('kill_grace')).toBe(2.5)
    expect(setup().p.getNumber('unset_thing')).toBeUndefined()
    expect(setup().p.getNumber('unset_thing', 3)).toBe(3)
    expect(() => setup({ cli: [['kill_grace', 'soon']] }).p.getNumber('kill_grace')).toThrow(
      /kill_grace must be a number, got "soon" \(from --mca kill_grace\)/,
    )
  })

  test('checkTypedParams catches a bad core value up front', () => {
    const { p } = setup({ cli: [['errmgr_continue', 'perhaps']] })
    registerCoreParams(p)
    expect(() => checkTypedParams(p)).toThrow(/errmgr_continue must be a boolean/)
  })
})

describe('registration and listing', () => {
  test('unknownKeys lists user settings nobody registered, from every source', () => {
    const { p } = setup({ home: 'typo_one = 1', env: { OMPX_MCA_typo_two: '2' }, cli: [['kill_grace', '1'], ['typo_three', '3']] })
    expect(p.unknownKeys()).toEqual(['typo_one', 'typo_three', 'typo_two'])
    p.register({ key: 'typo_two', description: 'now known' })
    expect(p.unknownKeys()).toEqual(['typo_one', 'typo_three'])
    expect(p.whereSet('typo_three')).toBe('--mca typo_three')
  })

  test('get works before registration; value() of an unknown, unset key is undefined', () => {
    const { p } = setup({ cli: [['later', 'x']] })
    expect(p.get('later')).toBe('x')
    expect(p.value('nothing')).toBeUndefined()
  })

  test('list: core params first, then plugin params by owner; default owner is core', () => {
    const { p } = setup()
    registerCoreParams(p)
    p.register({ key: 'zz_mine', description: 'x', owner: 'mapper:zz' })
    p.register({ key: 'aa_mine', description: 'x', owner: 'crs:aa' })
    const list = p.list()
    const keys = list.map((v) => v.def.key)
    expect(keys.slice(-2)).toEqual(['aa_mine', 'zz_mine'])
    for (const k of ['mapper', 'crs', 'launcher', 'transport', 'sstore', 'errmgr_continue', 'kill_grace', 'plugin_path']) {
      expect(keys).toContain(k)
    }
    expect(list.find((v) => v.def.key === 'kill_grace')!.def.owner).toBe('core')
    expect(p.get('errmgr_continue')).toBe('0')
  })

  test('toEnv carries every user setting to child roles', () => {
    const { p } = setup({ home: 'a = 1', cli: [['b', '2']] })
    expect(p.toEnv()).toEqual({ OMPX_MCA_a: '1', OMPX_MCA_b: '2' })
  })
})

describe('every parameter is checked at start-up: type, range, allowed values', () => {
  const stage = [
    { key: 'sstore_stage_compress', values: ['none', 'zstd'], default: 'none', description: '' },
    { key: 'sstore_stage_compress_level', type: 'number' as const, integer: true, min: 1, max: 22, default: '3', description: '' },
  ]
  const check = (s: Parameters<typeof setup>[0]) => {
    const { p } = setup(s)
    registerCoreParams(p)
    for (const def of stage) p.register({ ...def, owner: 'sstore:stage' })
    return () => checkTypedParams(p)
  }

  test.each([
    [{ cli: [['sstore_base_checksum', 'md5']] }, /parameter sstore_base_checksum must be one of crc32, sha256, got "md5" \(from --mca sstore_base_checksum\)/],
    [{ cli: [['sstore_base_verify', 'foo']] }, /sstore_base_verify must be one of checksum, size, got "foo"/],
    [{ env: { OMPX_MCA_snapc_base_timeout: '-5' } }, /snapc_base_timeout must be a number more than 0 and at most 2000000, got "-5" \(from OMPX_MCA_snapc_base_timeout\)/],
    [{ cli: [['snapc_base_timeout', '1e12']] }, /snapc_base_timeout must be a number more than 0/],
    [{ cli: [['sstore_stage_compress', 'gzip']] }, /sstore_stage_compress must be one of none, zstd, got "gzip"/],
    [{ cwd: 'sstore_stage_compress_level = 99\n' }, /sstore_stage_compress_level must be a whole number from 1 to 22, got "99" \(from .*ompx-params\.conf:1\)/],
    [{ cli: [['sstore_stage_compress_level', '2.5']] }, /whole number from 1 to 22/],
    [{ cli: [['sstore_base_keep', '-1']] }, /sstore_base_keep must be a whole number from 0 to 1000000/],
    [{ cli: [['kill_grace', 'Infinity']] }, /kill_grace must be a number from 0 to 2000000/],
    [{ cli: [['heartbeat_interval', '0']] }, /heartbeat_interval must be a number more than 0 and at most 3600/],
  ] as [Parameters<typeof setup>[0], RegExp][])('%j is refused', (s, re) => {
    expect(check(s)).toThrow(ActionableError)
    expect(check(s)).toThrow(re)
  })

  test('good values, empty values and defaults pass', () => {
    expect(check({ cli: [['sstore_base_checksum', 'sha256'], ['sstore_stage_compress', 'zstd'], ['sstore_stage_compress_level', '22'], ['snapc_base_timeout', '0.5'], ['kill_grace', '0']] })).not.toThrow()
    expect(check({ cli: [['sstore_base_verify', ''], ['sstore_stage_compress_level', ' ']] })).not.toThrow()
    expect(check({})).not.toThrow()
  })

  test('getNumber applies the same range', () => {
    const { p } = setup({ cli: [['snapc_base_timeout', '-5']] })
    registerCoreParams(p)
    expect(() => p.getNumber('snapc_base_timeout', 300)).toThrow(/more than 0/)
  })
})
