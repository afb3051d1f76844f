/**
 * A benchmark rank for scripts/bench/checkpoint.ts, written against the SDK (src/app). Two modes:
 *
 *   bun scripts/bench/ckpt-rank.ts hold --mb M [--fill random|mixed] --stop-file F
 *     Holds M MiB of state (a Uint8Array filled once), calls init(), prints `rank R ready`, then
 *     idles at SDK await points until F exists, and finalizes. onCheckpoint writes the state as
 *     one file (state.bin) plus a small meta.json, which is what a real `self` rank does, and
 *     prints `rank R wrote B bytes in T ms` (the app's part of the capture).
 *     --fill random: xorshift output, incompressible (like the dd source, /dev/urandom).
 *     --fill mixed: per 4 KiB page, one of random / zero / low-entropy words (about 3:1 for zstd).
 *
 *   bun scripts/bench/ckpt-rank.ts compute --iters N [--kb K] [--no-sdk]
 *     A fixed amount of CPU work: N iterations of an xorshift pass over K KiB of state (default
 *     1024), awaiting app.yieldToRuntime() between iterations (where a checkpoint could happen);
 *     prints `rank R checksum <hex> sdk=connected|standalone|off` at the end. --no-sdk skips init/yield/finalize (plain
 *     setImmediate between iterations), the "no C/R at all" baseline.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import * as app from '../../src/app'

const mode = process.argv[2]
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def
}
function num(name: string, def: number): number {
  const v = Number(arg(name, String(def)))
  if (!Number.isFinite(v) || v < 0) throw new Error(`ckpt-rank: --${name} needs a number`)
  return v
}

/** Fill `buf` with xorshift32 words seeded by the rank: fast (~1 GB/s in Bun) and incompressible. */
function fillRandom(words: Uint32Array, seed: number): void {
  let x = (Math.imul(seed + 1, 0x9e3779b1) | 1) >>> 0
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x
  }
}

/** Image-like: a third of the pages random, a third zero, a third small counters. */
function fillMixed(words: Uint32Array, seed: number): void {
  const PAGE = 1024 // words
  fillRandom(words, seed)
  for (let p = 0; p * PAGE < words.length; p++) {
    const kind = p % 3
    if (kind === 0) continue
    const end = Math.min(words.length, (p + 1) * PAGE)
    for (let i = p * PAGE; i < end; i++) words[i] = kind === 1 ? 0 : (i & 0xff) | ((p & 0xff) << 8)
  }
}

async function hold(): Promise<void> {
  const bytes = Math.round(num('mb', 256) * 1024 * 1024)
  const stopFile = arg('stop-file', '')
  if (!stopFile) throw new Error('ckpt-rank hold: --stop-file is required')
  const state = new Uint8Array(bytes)
  const words = new Uint32Array(state.buffer, 0, bytes >> 2)
  if (arg('fill', 'random') === 'mixed') fillMixed(words, app.rank)
  else fillRandom(words, app.rank)
  let checkpoints = 0
  app.onCheckpoint(async (dir) => {
    const t0 = performance.now()
    await Bun.write(join(dir, 'state.bin'), state)
    await Bun.write(join(dir, 'meta.json'), JSON.stringify({ rank: app.rank, bytes, checkpoints }))
    checkpoints++
    // The benchmark splits the local-finish phase with this: the app's own write (into the page
    // cache) against what the daemon does after it (checksums, fsync).
    console.log(`rank ${app.rank} wrote ${bytes} bytes in ${(performance.now() - t0).toFixed(1)} ms`)
  })
  await app.init()
  console.log(`rank ${app.rank} ready`)
  while (!existsSync(stopFile)) {
    await Bun.sleep(20)
    await app.yieldToRuntime()
  }
  await app.finalize()
}

async function compute(): Promise<void> {
  const iters = num('iters', 1000)
  const words = new Uint32Array(Math.max(1, Math.floor((num('kb', 1024) * 1024) / 4)))
  const sdk = !process.argv.includes('--no-sdk')
  fillRandom(words, app.rank)
  if (sdk) await app.init()
  let h = 0x811c9dc5
  for (let it = 0; it < iters; it++) {
    if (sdk) await app.yieldToRuntime()
    else await new Promise((r) => setImmediate(r))
    let x = (Math.imul(it + 1, 0x9e3779b1) | 1) >>> 0
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      words[i] = (words[i]! + x) ^ (words[i]! >>> 7)
    }
    h = Math.imul(h ^ words[it % words.length]!, 0x01000193)
  }
  const how = !sdk ? 'off' : app.standalone ? 'standalone' : 'connected'
  console.log(`rank ${app.rank} checksum ${(h >>> 0).toString(16).padStart(8, '0')} sdk=${how}`)
  if (sdk) await app.finalize()
}

if (mode === 'hold') await hold()
else if (mode === 'compute') await compute()
else {
  console.error('usage: ckpt-rank.ts hold --mb M --stop-file F [--fill random|mixed] | compute --iters N [--kb K] [--no-sdk]')
  process.exit(2)
}
