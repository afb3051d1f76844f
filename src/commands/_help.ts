/**
 * Help text rendered from the same OptionSpec tables the scanner reads, so `--help` can never
 * list an option the command does not accept. Left-aligned, wrapped to the terminal, in the
 * spellings users type (`-np N`, `--mca <key> <value>`).
 */
import type { OptionSpec } from '../args/scan'

export interface HelpDoc {
  usage: string
  description: string
  /** Sections of options; a single unnamed one is fine. */
  sections: { title: string; options: readonly OptionSpec[] }[]
  examples?: string[]
  notes?: string[]
}

const width = () => Math.max(60, Math.min(process.stdout.columns || 100, 120))

export function optionLabel(s: OptionSpec): string {
  const dash = (n: string) => (n.length === 1 ? `-${n}` : n === 'np' ? '-np' : `--${n}`)
  const names = [...(s.aliases ?? []).filter((a) => a.length <= 2), s.name].map(dash)
  const uniq = [...new Set(names)].join(', ')
  const arity = s.arity ?? 0
  if (arity === 0) return uniq
  if (arity === 2) return `${uniq} ${(s.valueHint ?? 'key value').split(' ').map((w) => `<${w}>`).join(' ')}`
  return `${uniq} ${s.valueHint ?? 'value'}`
}

function wrap(text: string, indent: number, max: number): string {
  const words = text.split(/\s+/)
  const lines: string[] = []
  let line = ''
  for (const w of words) {
    if (line && indent + line.length + 1 + w.length > max) {
      lines.push(line)
      line = w
    } else line = line ? `${line} ${w}` : w
  }
  if (line) lines.push(line)
  return lines.join(`\n${' '.repeat(indent)}`)
}

export function renderHelp(doc: HelpDoc): string {
  const max = width()
  const out = [`Usage: ${doc.usage}`, '', wrap(doc.description, 0, max)]
  const all = doc.sections.flatMap((s) => s.options.filter((o) => !o.hidden))
  const col = Math.min(34, Math.max(...all.map((o) => optionLabel(o).length)) + 4)
  for (const section of doc.sections) {
    const opts = section.options.filter((o) => !o.hidden)
    if (!opts.length) continue
    out.push('', `${section.title}:`)
    for (const o of opts) {
      const label = `  ${optionLabel(o)}`
      const pad = label.length + 2 > col ? `\n${' '.repeat(col)}` : ' '.repeat(col - label.length)
      out.push(label + pad + wrap(o.description, col, max))
    }
  }
  if (doc.examples?.length) out.push('', 'Examples:', ...doc.examples.map((e) => `  ${e}`))
  if (doc.notes?.length) out.push('', ...doc.notes.map((n) => wrap(n, 0, max)))
  return out.join('\n') + '\n'
}
