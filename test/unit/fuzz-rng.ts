/**
 * A tiny seeded PRNG (mulberry32) and byte mutators shared by the fuzz tests
 * (fuzz-wire.test.ts, fuzz-app-lines.test.ts). Fixed seeds make every run the same, so a
 * failure found once is found again in CI and can be replayed by its seed and iteration.
 */

export class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }
}

/** Bytes that tend to matter to parsers: msgpack type tags, length edges, newline, CR, ESC. */
const INTERESTING = [0x00, 0x01, 0x0a, 0x0d, 0x1b, 0x20, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xd4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff]

/** One to four random edits of `input`: flips, overwrites, inserts, deletes, duplicates, truncation. */
export function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  let b = Array.from(input)
  const edits = 1 + rng.int(4)
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1)
    switch (rng.int(7)) {
      case 0:
        if (b.length) b[at % b.length]! ^= 1 << rng.int(8)
        break
      case 1:
        if (b.length) b[at % b.length] = rng.pick(INTERESTING)
        break
      case 2:
        b.splice(at, 0, ...rng.bytes(1 + rng.int(8)))
        break
      case 3:
        b.splice(at, 1 + rng.int(8))
        break
      case 4:
        b.splice(at, 0, ...b.slice(at, at + 1 + rng.int(16)))
        break
      case 5:
        b = b.slice(0, at)
        break
      default:
        b.splice(at, 0, ...Array.from({ length: 1 + rng.int(4) }, () => rng.pick(INTERESTING)))
    }
  }
  return Uint8Array.from(b)
}

/** `data` cut into random chunks (empty ones included), as a socket might deliver it. */
export function chunks(rng: Rng, data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  let i = 0
  while (i < data.length) {
    const n = rng.chance(0.05) ? 0 : 1 + rng.int(Math.min(64, data.length - i))
    out.push(data.subarray(i, i + n))
    i += n
  }
  return out
}
