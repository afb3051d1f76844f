import { describe, expect, test } from 'bun:test'
import { crSettings } from '../../src/args/cr-options'
import { ActionableError } from '../../src/errors'
import { parseExports, parseRunArgs, splitMpmd } from '../../src/args/mpirun'
import { scanOptions } from '../../src/args/scan'
import { runOptions } from '../../src/args/run-options'

const env = { HOME: '/home/u', PATH: '/bin' }

describe('parseRunArgs', () => {
  test.each([
    [['-np', '4', './a'], 4, ['./a']],
    [['-n', '2', '--', './a', '-np', '9'], 2, ['./a', '-np', '9']],
    [['--np=3', 'prog', '--help'], 3, ['prog', '--help']],
    [['-c', '5', 'prog'], 5, ['prog']],
    [['prog'], undefined, ['prog']],
  ])('%j -> np %p argv %j', (argv, np, appArgv) => {
    const req = parseRunArgs(argv as string[], env)
    expect(req.apps).toHaveLength(1)
    expect(req.apps[0]!.np).toBe(np as number | undefined)
    expect(req.apps[0]!.argv).toEqual(appArgv as string[])
  })

  test('program arguments that look like options stay with the program', () => {
    const req = parseRunArgs(['-np', '1', 'ls', '-h', '--tag-output'], env)
    expect(req.apps[0]!.argv).toEqual(['ls', '-h', '--tag-output'])
    expect(req.job.help).toBe(false)
    expect(req.job.opts['tag-output']).toBeUndefined()
  })

  test('MPMD: app contexts split on ":" with their own -np, -x and --wdir', () => {
    const req = parseRunArgs(['--tag-output', '-np', '2', '-x', 'A=1', './a', 'x', ':', '-np', '3', '--wdir', '/tmp', './b'], env)
    expect(req.apps.map((a) => [a.index, a.np, a.argv, a.env])).toEqual([
      [0, 2, ['./a', 'x'], { A: '1' }],
      [1, 3, ['./b'], {}],
    ])
    expect(req.apps[1]!.cwd).toBe('/tmp')
    expect(req.job.opts['tag-output']).toBe(true)
  })

  test('job-wide options are refused after ":"', () => {
    expect(() => parseRunArgs(['-np', '1', './a', ':', '--tag-output', './b'], env)).toThrow(/unknown option --tag-output/)
  })

  test.each([
    [['-np', '0', './a'], /-np needs a positive whole number/],
    [['-np', 'x', './a'], /-np needs a positive whole number/],
    [['-np', '2'], /no program given/],
    [['-np'], /needs a value/],
    [['--tag-outptu', './a'], /did you mean --tag-output/],
    [['--stdin', 'some', './a'], /--stdin takes/],
    [['--timeout', '-1', './a'], /--timeout takes/],
    [['-np', '1', './a', ':'], /no program given \(app context 2\)/],
  ])('%j is rejected', (argv, message) => {
    expect(() => parseRunArgs(argv as string[], env)).toThrow(message as RegExp)
  })

  test('stdin and timeout', () => {
    expect(parseRunArgs(['a'], env).stdin).toEqual({ kind: 'rank', rank: 0 })
    expect(parseRunArgs(['--stdin', '3', 'a'], env).stdin).toEqual({ kind: 'rank', rank: 3 })
    expect(parseRunArgs(['--stdin', 'all', 'a'], env).stdin).toEqual({ kind: 'all' })
    expect(parseRunArgs(['--timeout', '1.5', 'a'], env).timeoutSec).toBe(1.5)
  })
})

describe('scanOptions', () => {
  test('--mca takes two values and repeats; --opt=value works', () => {
    const s = scanOptions(['--mca', 'crs', 'self', '--mca', 'mapper', 'node', '--map-by=node', 'prog'], runOptions, {
      command: 'ompx run',
      stopAtPositional: true,
    })
    expect(s.opts.mca).toEqual([['crs', 'self'], ['mapper', 'node']])
    expect(s.opts['map-by']).toBe('node')
    expect(s.rest).toEqual(['prog'])
  })

  test('single-dash long options (mpirun style) and repeatable -x', () => {
    const s = scanOptions(['-host', 'a:2', '-x', 'A', '-x', 'B=2', 'p'], runOptions, { command: 'c', stopAtPositional: true })
    expect(s.opts.host).toEqual(['a:2'])
    expect(s.opts.x).toEqual(['A', 'B=2'])
  })

  test('--mca with one value is an error', () => {
    expect(() => scanOptions(['--mca', 'crs'], runOptions, { command: 'c' })).toThrow(/needs two values/)
  })
})

test('splitMpmd and parseExports', () => {
  expect(splitMpmd(['a', ':', 'b', 'c'])).toEqual([['a'], ['b', 'c']])
  expect(parseExports(['HOME', 'X=1=2'], env)).toEqual({ HOME: '/home/u', X: '1=2' })
  expect(() => parseExports(['NOPE_NOT_SET'], env)).toThrow(/not set/)
  expect(() => parseExports(['1BAD'], env)).toThrow(/VAR or VAR=value/)
})

describe('numeric options are bounded, with one-line user errors', () => {
  const errorOf = (fn: () => unknown): Error => {
    try {
      fn()
    } catch (e) {
      expect(e).toBeInstanceOf(ActionableError)
      return e as Error
    }
    throw new Error('expected an ActionableError')
  }
  test.each([
    [['-np', '99999999999999999999', 'p'], /^-np 99999999999999999999 is too many ranks; a job may have at most 1048576$/],
    [['-np', '1048577', 'p'], /-np 1048577 is too many ranks/],
    [['-np', '1', 'p', ':', '-np', '2000000', 'q'], /-np 2000000 is too many ranks \(app context 2\)/],
    [['--timeout', '1e300', 'p'], /^--timeout takes a positive number of seconds up to 2000000, got "1e300"$/],
    [['--timeout', 'Infinity', 'p'], /--timeout takes a positive number/],
    [['--stdin', '99999999999999999999', 'p'], /--stdin takes a rank number/],
  ])('%j', (argv, message) => {
    expect(errorOf(() => parseRunArgs(argv, env)).message).toMatch(message)
  })

  test('-np at the limit is accepted', () => {
    expect(parseRunArgs(['-np', '1048576', 'p'], env).apps[0]!.np).toBe(1048576)
  })

  test.each([
    [{ 'ckpt-interval': '99999999999999d' }, /^--ckpt-interval may be at most 2000000 seconds \(23 days\), got "99999999999999d"$/],
    [{ keep: '1e3' }, /^--keep takes a whole number from 1 to 1000000, got "1e3"$/],
    [{ keep: '99999999999999999999' }, /--keep takes a whole number from 1 to 1000000/],
    [{ 'enable-recovery': true, 'max-restarts': '1e400' }, /--max-restarts takes a whole number from 0 to 1000000/],
    [{ 'enable-recovery': true, 'recovery-delay': '9999999999h' }, /--recovery-delay/],
  ])('crSettings %j', (opts, message) => {
    expect(errorOf(() => crSettings(opts)).message).toMatch(message)
  })
})
