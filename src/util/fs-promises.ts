/**
 * The node:fs/promises functions the checkpoint machinery (src/sstore, the sstore plugins) uses,
 * loaded on the first call. Their modules are part of every launcher and daemon, but a job that
 * never checkpoints never calls them, and loading node:fs/promises (with node:events under its
 * FileHandle) cost every `ompx run` and `ompx orted` ~1.5 ms and its pages at start (issue #16).
 */
type Fsp = typeof import('node:fs/promises')
export type { FileHandle } from 'node:fs/promises'

let fsp: Fsp | undefined
const load = (): Fsp => (fsp ??= require('node:fs/promises') as Fsp)
/** A function of node:fs/promises, with its own (overloaded) type, that loads the module when called. */
const lazy = <K extends keyof Fsp>(name: K): Fsp[K] => ((...args: unknown[]) => (load()[name] as (...a: unknown[]) => unknown)(...args)) as Fsp[K]

export const chmod = lazy('chmod')
export const cp = lazy('cp')
export const lstat = lazy('lstat')
export const mkdir = lazy('mkdir')
export const open = lazy('open')
export const readFile = lazy('readFile')
export const readdir = lazy('readdir')
export const rename = lazy('rename')
export const rm = lazy('rm')
export const rmdir = lazy('rmdir')
export const writeFile = lazy('writeFile')
