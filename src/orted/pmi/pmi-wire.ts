/**
 * The PMI wire formats, as MPICH's clients speak them (docs/pmi.md): PMI-1 is one line per
 * message of space-separated `key=value` pairs (`cmd=put kvsname=kvs_1 key=k value=v`); PMI-2 is a
 * 6-character decimal length followed by `cmd=NAME;key=value;...;`. Pure functions and one byte
 * framer, so the server only routes and the grammar can be tested message by message.
 */

/** Limits we announce in `get_maxes` (Hydra's figures; MPICH's simple client holds lines of 1024). */
export const PMI_MAXES = { kvsname: 256, key: 64, value: 1024 } as const
/** Longest PMI-1 line we accept (a put of the longest key and value fits with room to spare). */
const MAX_PMI1_LINE = 4096
/** Longest PMI-2 message body we accept. */
const MAX_PMI2_MESSAGE = 8192

export type PmiFields = Map<string, string>

/** A parsed PMI-1 line, or why it is not one. `cmd` (or `mcmd`) is the command's name. */
type Pmi1Line = { ok: true; cmd: string; fields: PmiFields } | { ok: false; why: string }

export function parsePmi1(line: string): Pmi1Line {
  const fields: PmiFields = new Map()
  for (const word of line.split(' ')) {
    if (word === '') continue
    const eq = word.indexOf('=')
    if (eq <= 0) return { ok: false, why: `"${clip(word)}" is not key=value` }
    const key = word.slice(0, eq)
    if (fields.has(key)) return { ok: false, why: `${clip(key)} appears twice` }
    fields.set(key, word.slice(eq + 1))
  }
  const cmd = fields.get('cmd') ?? fields.get('mcmd')
  if (!cmd) return { ok: false, why: 'no cmd=' }
  return { ok: true, cmd, fields }
}

/** What ends a PMI-1 value or line. */
const LINE_BREAKERS = /[ \n]/

/**
 * One PMI-1 line. MPICH's parser (simple_pmiutil.c, PMIU_parse_keyvals) takes a value up to the
 * next space or newline, so a value may hold `=`, `;` and anything else but those two (a
 * business card, a port name): values are sent as they are. `msg` is our own text, made one
 * word as Hydra writes them (`key_x_not_found`). A value that holds a space or a newline cannot
 * be sent (the client would read a broken line): the answer is the command's `rc=-1` with why.
 */
export function pmi1(cmd: string, fields: Record<string, string | number> = {}): string {
  let out = `cmd=${cmd}`
  for (const [k, v] of Object.entries(fields)) {
    const value = k === 'msg' ? word(String(v)) : String(v)
    if (LINE_BREAKERS.test(value)) return pmi1(cmd, { rc: -1, msg: `the ${k} holds a space or a newline, which a PMI-1 line cannot carry` })
    out += ` ${k}=${value}`
  }
  return `${out}\n`
}

/** An error text as one PMI-1 value: Hydra's style (`key_x_not_found`), no white space. */
function word(text: string): string {
  return text.replace(/\s+/g, '_')
}

/** PMI-2: `cmd=NAME;k=v;...;` with `;` inside a value written as `;;`. */
export function parsePmi2(body: string): Pmi1Line {
  const fields: PmiFields = new Map()
  let i = 0
  while (i < body.length) {
    const eq = body.indexOf('=', i)
    if (eq <= i) return { ok: false, why: 'a PMI-2 field is not key=value' }
    const key = body.slice(i, eq)
    let value = ''
    let j = eq + 1
    for (;;) {
      const semi = body.indexOf(';', j)
      if (semi < 0) return { ok: false, why: 'a PMI-2 field does not end with ;' }
      value += body.slice(j, semi)
      if (body[semi + 1] === ';') {
        value += ';'
        j = semi + 2
        continue
      }
      i = semi + 1
      break
    }
    if (fields.has(key)) return { ok: false, why: `${clip(key)} appears twice` }
    fields.set(key, value)
  }
  const cmd = fields.get('cmd')
  if (!cmd) return { ok: false, why: 'no cmd=' }
  return { ok: true, cmd, fields }
}

export function pmi2(cmd: string, fields: Record<string, string | number> = {}): string {
  let body = `cmd=${cmd};`
  for (const [k, v] of Object.entries(fields)) body += `${k}=${String(v).replaceAll(';', ';;')};`
  return `${String(Buffer.byteLength(body)).padEnd(6, ' ')}${body}`
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s
}

const NL = 10
const utf8 = new TextDecoder()

/**
 * Cuts a PMI byte stream into messages: lines until the client switches to PMI-2, then
 * length-prefixed bodies. Returns an error text when the peer breaks the framing (too long, a
 * bad length); the caller answers it and closes the connection.
 */
export class PmiFramer {
  private buf: Uint8Array = new Uint8Array(0)
  version: 1 | 2 = 1

  constructor(private readonly onMessage: (text: string) => void) {}

  push(chunk: Uint8Array): string | null {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk.slice()
    for (;;) {
      if (this.version === 1) {
        const nl = this.buf.indexOf(NL)
        if (nl < 0) return this.buf.length > MAX_PMI1_LINE ? `a line longer than ${MAX_PMI1_LINE} bytes` : null
        if (nl > MAX_PMI1_LINE) return `a line longer than ${MAX_PMI1_LINE} bytes`
        const text = utf8.decode(this.buf.subarray(0, nl)).replace(/\r$/, '')
        this.buf = this.buf.subarray(nl + 1)
        this.onMessage(text)
      } else {
        if (this.buf.length < 6) return null
        const len = Number(utf8.decode(this.buf.subarray(0, 6)).trim())
        if (!Number.isInteger(len) || len < 0) return 'a PMI-2 message without a valid 6-character length'
        if (len > MAX_PMI2_MESSAGE) return `a PMI-2 message longer than ${MAX_PMI2_MESSAGE} bytes`
        if (this.buf.length < 6 + len) return null
        const text = utf8.decode(this.buf.subarray(6, 6 + len))
        this.buf = this.buf.subarray(6 + len)
        this.onMessage(text)
      }
    }
  }
}
