/**
 * A daemon's stdin is its lifeline: the first line carries the job secret (so it never shows in
 * argv or the environment), and end-of-file means whoever launched us (ompx run, ssh, srun) is
 * gone, so the daemon must kill its ranks and exit instead of leaving orphans.
 */
import { ActionableError } from '../errors'
import { writeStderr } from '../tty'

export async function readSecretAndWatch(onEof: () => void, timeoutMs = 15000): Promise<string> {
  const reader = Bun.stdin.stream().getReader()
  let buffered = ''
  const decoder = new TextDecoder()
  const timer = setTimeout(() => {
    writeStderr('ompx orted: no job secret on stdin; daemons are started by ompx run or ompx hnp\n')
    process.exit(1)
  }, timeoutMs)
  while (!buffered.includes('\n')) {
    const { done, value } = await reader.read()
    if (done) {
      clearTimeout(timer)
      throw new ActionableError('stdin closed before the job secret arrived; daemons are started by ompx run or ompx hnp')
    }
    buffered += decoder.decode(value, { stream: true })
  }
  clearTimeout(timer)
  const secret = buffered.slice(0, buffered.indexOf('\n')).trim()
  if (!/^[0-9a-f]{64}$/i.test(secret)) throw new ActionableError('the first line of stdin is not a job secret')
  void (async () => {
    try {
      while (!(await reader.read()).done) {
        // Nothing else is expected on the lifeline; keep draining until it closes.
      }
    } catch {
      // A read error means the same as EOF here.
    }
    onEof()
  })()
  return secret
}
