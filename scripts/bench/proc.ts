/**
 * Process helpers of the checkpoint benchmarks (scripts/bench/checkpoint.ts, ckpt-criu.ts): run a
 * command with a deadline, wait for lines on a stream, find a process's children.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** `p`, or 'timeout' after `ms`; the timer is cleared either way (a pending timer keeps Bun alive). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))
  try {
    return await Promise.race([p, t])
  } finally {
    clearTimeout(timer)
  }
}

export interface Ran {
  code: number | null
  /** Wall time from spawn to exit. */
  ms: number
  out: string
  err: string
}

/** Run a command to completion (SIGKILLed after `timeoutMs`). */
export async function runFor(cmd: string[], timeoutMs: number, env?: Record<string, string>): Promise<Ran> {
  const t0 = performance.now()
  const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const text = Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  if ((await within(p.exited, timeoutMs)) === 'timeout') {
    p.kill('SIGKILL')
    await p.exited
    const got = await within(text, 1000)
    const [out, err] = got === 'timeout' ? ['', ''] : got
    return { code: null, ms: performance.now() - t0, out, err: `${err}\n(killed after ${timeoutMs / 1000} s)`.trim() }
  }
  const ms = performance.now() - t0
  const [out, err] = await text
  return { code: p.exitCode, ms, out, err }
}

/** `sync`, so dirty pages of what came before are not written back during the next measurement. */
export async function sync(): Promise<void> {
  await runFor(['sync'], 600_000)
}

/** Pids of `pid`'s children (all its threads' children: Bun may spawn from any thread). */
export function childrenOf(pid: number): number[] {
  const kids: number[] = []
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      if (text) kids.push(...text.split(' ').map(Number))
    }
  } catch {}
  return kids
}

/**
 * Read a stream line by line in the background (so its writer never blocks on a full pipe) and
 * let the caller wait until a predicate over the lines so far holds.
 */
export function lineWatcher(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = []
  let partial = ''
  let ended = false
  const wake = new Set<() => void>()
  const decoder = new TextDecoder()
  const done = (async () => {
    for await (const chunk of stream) {
      const parts = (partial + decoder.decode(chunk, { stream: true })).split('\n')
      partial = parts.pop()!
      lines.push(...parts)
      for (const w of wake) w()
    }
    ended = true
    for (const w of wake) w()
  })().catch(() => {
    ended = true
  })
  return {
    lines,
    done,
    /** Resolves true once `pred(lines)` holds, false if the stream ends or `ms` pass first. */
    async until(pred: (lines: string[]) => boolean, ms: number): Promise<boolean> {
      const deadline = performance.now() + ms
      while (!pred(lines)) {
        if (ended || performance.now() > deadline) return false
        await new Promise<void>((res) => {
          wake.add(res)
          setTimeout(res, 50)
        })
        wake.clear()
      }
      return true
    },
  }
}
