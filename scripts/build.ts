/** Compile dist/ompx: one self-contained executable (flags and why: scripts/build-flags.ts). */
import { $ } from 'bun'
import { join } from 'node:path'
import { COMPILE_FLAGS } from './build-flags'

const root = join(import.meta.dir, '..')
// `--outfile PATH` lets parallel work trees build without racing on dist/ompx.
const flag = process.argv.indexOf('--outfile')
const out = flag > 0 ? process.argv[flag + 1]! : join(root, 'dist', 'ompx')
const started = performance.now()
await $`${process.execPath} build ${COMPILE_FLAGS} ${join(root, 'src/main.ts')} --outfile ${out}`.cwd(root).quiet()
console.log(`built ${out} in ${Math.round(performance.now() - started)} ms`)
