/**
 * Ranks must not outlive the process that started them, even when it is SIGKILLed and cannot
 * clean up. A tiny `sh` sidecar holds the read end of a pipe from us; when that pipe hits EOF
 * (we died, however) it kills every process group still listed in our pgid file. Each rank
 * leads its own group, so this also takes whatever the rank forked.
 */
import type { Subprocess } from 'bun'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sessionRoot } from '../runtime/session'

const SCRIPT = `while read -r _; do :; done
if [ -f "$1" ]; then while read -r g; do kill -KILL "-$g" 2>/dev/null; done < "$1"; rm -f "$1"; fi`

export class Reaper {
  private static instance: Reaper | undefined
  private groups = new Set<number>()
  private pending = false
  private file: string
  private sidecar: Subprocess<'pipe', 'ignore', 'ignore'>

  private constructor() {
    this.file = join(sessionRoot(), `reap-${process.pid}.pgids`)
    writeFileSync(this.file, '', { mode: 0o600 })
    this.sidecar = Bun.spawn(['sh', '-c', SCRIPT, 'ompx-reaper', this.file], {
      stdin: 'pipe',
      stdout: 'ignore',
      stderr: 'ignore',
      detached: true,
    })
    this.sidecar.unref()
    // A clean exit with no group left: the sidecar finds no list and ends without running rm(1),
    // one process less at the end of every run (issue #16). With groups left it still kills them.
    process.once('exit', () => this.groups.size === 0 && rmSync(this.file, { force: true }))
  }

  /** The process-wide reaper, started with the first rank. */
  static get(): Reaper {
    return (Reaper.instance ??= new Reaper())
  }

  add(pgid: number): void {
    this.groups.add(pgid)
    this.schedule()
  }

  remove(pgid: number): void {
    if (this.groups.delete(pgid)) this.schedule()
  }

  /**
   * One write per synchronous run, not two per rank: a launch of 256 ranks would otherwise
   * rewrite the list 512 times. A microtask, not setImmediate: it runs as soon as the current
   * synchronous run ends, before any I/O callback or timer, so a rank is unlisted for microseconds,
   * not for a loop turn (a test that froze a daemon as soon as its ranks had printed, on a loaded
   * machine, once found the list still empty, and the ranks outlived the daemon).
   */
  private schedule(): void {
    if (this.pending) return
    this.pending = true
    queueMicrotask(() => {
      this.pending = false
      writeFileSync(this.file, [...this.groups].map((g) => `${g}\n`).join(''), { mode: 0o600 })
    })
  }
}
