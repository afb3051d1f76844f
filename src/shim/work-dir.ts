/**
 * The shim's per-rank checkpoint directory ($OMPX_CKPT_DIR): where the program writes its state
 * when signalled and reads it back after a restart. The shim copies it into the snapshot on a
 * capture, and the snapshot back into it before a restarted program starts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { cp } from '../util/fs-promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ActionableError, errorMessage } from '../errors'
import { RANK_META } from '../sstore/types'

/** The file the program creates when its state is complete; never part of an image. */
export const DONE_FILE = 'done'

export class WorkDir {
  private constructor(readonly path: string) {}

  /** `$OMPX_SESSION_DIR/shim-ckpt/rank_<r>` (fresh, 0700), or a temp dir outside ompx. */
  static create(env: Record<string, string | undefined>): WorkDir {
    const session = env.OMPX_SESSION_DIR
    try {
      if (!session) return new WorkDir(mkdtempSync(join(tmpdir(), 'ompx-shim-')))
      const path = join(session, 'shim-ckpt', `rank_${env.OMPX_RANK ?? '0'}`)
      rmSync(path, { recursive: true, force: true })
      mkdirSync(path, { recursive: true, mode: 0o700 })
      chmodSync(path, 0o700)
      return new WorkDir(path)
    } catch (err) {
      throw new ActionableError(`cannot create the checkpoint directory of the program: ${errorMessage(err)}`)
    }
  }

  get donePath(): string {
    return join(this.path, DONE_FILE)
  }

  /** Before a restarted program starts: the image files become its state again. */
  async restoreFrom(imageDir: string): Promise<void> {
    if (resolve(imageDir) === resolve(this.path)) return
    if (!existsSync(imageDir)) throw new Error(`the restart image ${imageDir} does not exist`)
    // The snapshot's own metadata is not the program's: it would come back in the next image.
    await copyEntries(imageDir, this.path, [DONE_FILE, RANK_META])
  }

  /** After the program signalled `done`: everything but `done` goes into the snapshot dir. */
  async saveTo(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true })
    await copyEntries(this.path, dir, [DONE_FILE])
  }

  remove(): void {
    try {
      rmSync(this.path, { recursive: true, force: true })
    } catch {
      // Best effort at exit; the session dir goes with the job anyway.
    }
  }
}

async function copyEntries(from: string, to: string, skip: string[]): Promise<void> {
  for (const name of readdirSync(from)) {
    if (skip.includes(name)) continue
    await cp(join(from, name), join(to, name), { recursive: true, force: true })
  }
}
