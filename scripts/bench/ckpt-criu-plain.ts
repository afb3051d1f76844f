/**
 * The plain-criu side of the crs criu benchmark (ckpt-criu.ts): the same program started the way
 * a CRIU user would, R `criu dump` at once (and the same plus `sync`), then R `criu restore -d`
 * at once. Kept apart so ckpt-criu.ts holds the ompx side and the schedule.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tagRun } from './lib'
import { childrenOf, runFor, sync } from './proc'

export interface PlainCriu {
  criu: string
  ranks: number
  /** The program and its arguments. */
  prog: string[]
  /** A fresh directory of this round, removed when it ends. */
  dir: string
  timeoutMs: number
}

export interface PlainTimes {
  plainDumpMs?: number
  plainDumpSyncMs?: number
  plainRestoreMs?: number
  leftovers?: string[]
}

/** R criu commands at once (each with -D DIR -o LOG); wall until all exit. Throws naming the first that failed. */
async function criuAll(o: PlainCriu, argvs: string[][], e: Record<string, string>): Promise<number> {
  const t0 = performance.now()
  const res = await Promise.all(argvs.map((a) => runFor([o.criu, ...a], o.timeoutMs, e)))
  const ms = performance.now() - t0
  const bad = res.findIndex((r) => r.code !== 0)
  if (bad >= 0) {
    const a = argvs[bad]!
    const logFile = join(a[a.indexOf('-D') + 1]!, a[a.indexOf('-o') + 1]!)
    const why = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => /Error/.test(l)).slice(0, 2).join(' | ') : ''
    throw new Error(`criu ${a.join(' ')}: exit ${res[bad]!.code}: ${why || res[bad]!.err.trim().split('\n').pop()}`)
  }
  return ms
}

/** One plain round: fills `rep`'s plain times (and leftovers); throws on failure. */
export async function plainRound(o: PlainCriu, rep: PlainTimes): Promise<void> {
  const { dir } = o
  mkdirSync(dir, { recursive: true })
  const tag = tagRun()
  const e = { ...tag.env }
  const dirs = Array.from({ length: o.ranks }, (_, i) => join(dir, `img${i}`))
  const outs = dirs.map((_, i) => join(dir, `out${i}`))
  try {
    const trees = outs.map((out, i) => {
      // Each tree its own cwd: criu's parasite mounts a procfs relative to it during a dump
      // (docs/criu.md), so trees sharing one cannot be dumped at the same time.
      const cwd = join(dir, `cwd${i}`)
      mkdirSync(cwd)
      const fd = openSync(out, 'w')
      // stderr to /dev/null: unshare complains there when its child is dumped, and any write
      // to the output file after the dump would fail criu's size check at restore.
      const p = Bun.spawn(['unshare', '--pid', '--fork', '--kill-child', 'setsid', ...o.prog], { cwd, env: { ...process.env, ...e }, stdin: 'ignore', stdout: fd, stderr: 'ignore' })
      closeSync(fd)
      return p
    })
    const deadline = performance.now() + o.timeoutMs
    while (!outs.every((f) => existsSync(f) && readFileSync(f, 'utf8').includes('tick '))) {
      if (performance.now() > deadline) throw new Error('plain: the programs did not start')
      await Bun.sleep(20)
    }
    const roots = trees.map((t) => childrenOf(t.pid)[0])
    if (roots.some((r) => r === undefined)) throw new Error('plain: no process under unshare')
    for (const d of dirs) mkdirSync(d)
    await sync()
    const t0 = performance.now()
    rep.plainDumpMs = await criuAll(o, roots.map((r, i) => ['dump', '-t', String(r), '-D', dirs[i]!, '-o', 'dump.log']), e)
    await sync()
    rep.plainDumpSyncMs = performance.now() - t0
    await Promise.all(trees.map((t) => t.exited))

    await sync()
    rep.plainRestoreMs = await criuAll(o, dirs.map((d) => ['restore', '-d', '-D', d, '-o', 'restore.log', '--pidfile', join(d, 'pid')]), e)
    for (const d of dirs) {
      try {
        process.kill(-Number(readFileSync(join(d, 'pid'), 'utf8')), 'SIGKILL')
      } catch {}
    }
  } finally {
    rep.leftovers = [...(rep.leftovers ?? []), ...(await tag.done(200))]
    rmSync(dir, { recursive: true, force: true })
  }
}
