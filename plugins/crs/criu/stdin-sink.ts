/**
 * A restored program's stdin: our end of the socketpair criu handed in. Bun's FileSink for a raw
 * fd does not close the fd on end(), and the program only sees EOF once it is closed, so end()
 * closes it here. Shaped like Bun.spawn's stdin sink (write, flush, end), which the daemon uses.
 */
import { closeSync } from 'node:fs'
import type { CriuTree } from './tree'

/** The sink, or null (and the fd closed, so the program reads EOF) when no stdin is wanted. */
export function stdinSink(fd: number, wanted: boolean): CriuTree['stdin'] {
  const close = () => {
    try {
      closeSync(fd)
    } catch {
      // Closed already.
    }
  }
  if (!wanted) {
    close()
    return null
  }
  const sink = Bun.file(fd).writer()
  let ended = false
  return {
    write: (data) => sink.write(data),
    flush: () => sink.flush(),
    end: (error?: Error) => {
      if (ended) return 0
      ended = true
      const r = sink.end(error)
      void Promise.resolve(r).finally(close)
      return r
    },
  }
}
