/**
 * Compile dist/ompx: one self-contained executable. .env and bunfig.toml autoload are off so a
 * user's working directory can never change how the runtime behaves.
 */
import { $ } from 'bun'
import { join } from 'node:path'

const root = join(import.meta.dir, '..')
// `--outfile PATH` lets parallel work trees build without racing on dist/ompx.
const flag = process.argv.indexOf('--outfile')
const out = flag > 0 ? process.argv[flag + 1]! : join(root, 'dist', 'ompx')
const started = performance.now()
// --bytecode (ESM) halves start-up time, which every launch and every daemon pays.
await $`${process.execPath} build --compile --bytecode --format=esm --minify-syntax --minify-whitespace --no-compile-autoload-dotenv --no-compile-autoload-bunfig ${join(root, 'src/main.ts')} --outfile ${out}`
  .cwd(root)
  .quiet()
console.log(`built ${out} in ${Math.round(performance.now() - started)} ms`)
