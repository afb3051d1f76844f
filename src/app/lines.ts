/**
 * Line framing and field helpers of the app-coordinator protocol (docs/app-protocol.md), shared
 * by the SDK (a rank) and the daemon's AppServer. Dependency-free on purpose: it is bundled into
 * every app that uses `ompx/app`.
 */

/** Longest line either side accepts (without its newline): a 1 MiB kv value in base64 plus its verb, id and key. */
export const MAX_LINE = 2 * 1024 * 1024
/** Longest kv value (decoded bytes). */
export const MAX_VALUE = 1024 * 1024
/** Longest kv key or barrier name (UTF-8 bytes). */
export const MAX_KEY = 256
export const APP_PROTOCOL_VERSION = 1

const NL = 10
const utf8 = new TextDecoder()
const enc = new TextEncoder()

/**
 * Cuts a byte stream into lines. Chunks may hold part of a line or many lines; a line that grows
 * past `max` bytes makes `push` return false (the caller closes the connection). After `stop()`
 * nothing more is delivered, even from the rest of the chunk being processed.
 */
export class LineReader {
  private parts: Uint8Array[] = []
  private size = 0
  private stopped = false

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly max = MAX_LINE,
  ) {}

  push(chunk: Uint8Array): boolean {
    let start = 0
    while (!this.stopped) {
      const nl = chunk.indexOf(NL, start)
      if (nl < 0) {
        const rest = chunk.length - start
        if (this.size + rest > this.max) return this.fail()
        // The socket may reuse its buffer after the callback: keep a copy of a partial line.
        if (rest > 0) this.parts.push(chunk.slice(start)), (this.size += rest)
        return true
      }
      if (this.size + (nl - start) > this.max) return this.fail()
      const piece = chunk.subarray(start, nl)
      const bytes = this.parts.length ? concat([...this.parts, piece], this.size + piece.length) : piece
      this.parts = []
      this.size = 0
      start = nl + 1
      let line = utf8.decode(bytes)
      if (line.endsWith('\r')) line = line.slice(0, -1) // typed by hand through socat
      this.onLine(line)
    }
    return true
  }

  stop(): void {
    this.stopped = true
    this.parts = []
  }

  private fail(): boolean {
    this.stop()
    return false
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) out.set(p, at), (at += p.length)
  return out
}

/**
 * The first `n - 1` space-separated fields of `line` and the remainder as the n-th (the
 * `<text>` field, which may hold spaces). Missing fields are absent from the result.
 */
export function splitFields(line: string, n: number): string[] {
  const out: string[] = []
  let at = 0
  while (out.length < n - 1) {
    const sp = line.indexOf(' ', at)
    if (sp < 0) break
    out.push(line.slice(at, sp))
    at = sp + 1
  }
  out.push(line.slice(at))
  return out
}

/** A request id: a non-negative integer in decimal. */
export function parseId(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,15}$/.test(s)) return null
  return Number(s)
}

// Quartets with at most two '=' at the end: the alphabet and padding by one flat class (linear in
// JSC; the quartet-grouped form took ~0.5 s per 1 MiB value) plus the length.
const B64 = /^[A-Za-z0-9+/]*={0,2}$/

export function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** Strict standard base64 (Buffer.from alone silently skips garbage); null when malformed. */
export function fromB64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0 || !B64.test(s)) return null
  return new Uint8Array(Buffer.from(s, 'base64'))
}

export function toBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? enc.encode(v) : v
}

/** Why `key` cannot be a kv key or barrier name, or null when it can. */
export function badKey(key: string): string | null {
  if (key.length === 0) return 'empty key'
  if (/\s/.test(key)) return `key "${key.slice(0, 40)}" contains white space`
  if (enc.encode(key).length > MAX_KEY) return `key is longer than ${MAX_KEY} bytes`
  return null
}

/** A reason or path as a `<text>` field: one line, whatever the message held. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim()
}
