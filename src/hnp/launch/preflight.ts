/**
 * Checks made before any rank starts, so a typo fails in one line instead of N rank errors:
 * the working directory exists, the program can be found and executed. Returns the program's
 * path, or a one-line warning beside it (a program whose MPI finds no PMI it speaks here).
 */
import { accessSync, constants, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { ActionableError } from '../../errors'
import type { AppContext } from '../../runtime/job'
import { foreignMpiWarning } from '../../runtime/mpi-library'

export function preflightApp(app: AppContext, env: Record<string, string | undefined>): { path: string; warning: string | null } {
  let st
  try {
    st = statSync(app.cwd)
  } catch {
    throw new ActionableError(`working directory ${app.cwd} does not exist (--wdir)`)
  }
  if (!st.isDirectory()) throw new ActionableError(`working directory ${app.cwd} is not a directory (--wdir)`)
  const prog = app.argv[0]!
  const path = app.env.PATH ?? env.PATH ?? ''
  const found = prog.includes('/') ? resolve(app.cwd, prog) : Bun.which(prog, { PATH: path, cwd: app.cwd })
  if (!found) {
    throw new ActionableError(`program "${prog}" was not found in PATH; give a path such as ./${prog}`)
  }
  try {
    if (statSync(found).isDirectory()) throw new Error('dir')
    accessSync(found, constants.X_OK)
  } catch (err) {
    const what = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not an executable file'
    throw new ActionableError(`program "${prog}" ${what} (looked in ${app.cwd})`)
  }
  return { path: found, warning: foreignMpiWarning(prog, found) }
}
