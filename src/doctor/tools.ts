/**
 * Other things a node may need: the ssh client for the ssh launcher, and a C compiler and
 * python3, which the test suite's fixtures use. Each is found on PATH and asked its version.
 */
import { check, type Check, type Section } from './types'

/** First line of `cmd args` (stdout or stderr), or null when it does not run. */
function firstLine(argv: string[]): string | null {
  const path = Bun.which(argv[0]!)
  if (!path) return null
  try {
    const r = Bun.spawnSync([path, ...argv.slice(1)], { stdout: 'pipe', stderr: 'pipe', timeout: 10_000 })
    const text = `${r.stdout}${r.stderr}`.trim()
    return r.exitCode === 0 ? (text.split('\n')[0] ?? '') : null
  } catch {
    return null
  }
}

function tool(name: string, argv: string[], missing: string, verdict: 'fail' | 'warn' | 'info'): Check {
  const line = firstLine(argv)
  return line === null ? check(name, verdict, missing) : check(name, 'ok', `${Bun.which(argv[0]!)}: ${line}`)
}

export function toolsSection(): Section {
  return {
    title: 'other tools',
    checks: [
      tool('ssh', ['ssh', '-V'], 'no ssh client on PATH: the ssh launcher cannot start remote daemons', 'warn'),
      tool('cc', ['cc', '--version'], 'no C compiler (cc): only needed to build the test fixtures', 'info'),
      tool('python3', ['python3', '--version'], 'no python3: only needed by some tests', 'info'),
    ],
  }
}
