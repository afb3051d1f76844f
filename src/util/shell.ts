/**
 * Shell words, both ways: quoting a word for a POSIX shell (ssh runs the remote command through
 * one; `ompx restart --showme` prints commands users paste) and splitting a parameter value such
 * as `ssh -p 2222 -i "my key"` into words the way sh would.
 */

/** Quote one word for a POSIX shell (the remote side of ssh is one). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_\-.,:/@%+=]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/** Split a parameter like `ssh -p 2222 -i "my key"` into words (quotes and backslashes as sh). */
export function splitWords(text: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  let quote: '"' | "'" | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && /["\\$`]/.test(text[i + 1] ?? '')) cur += text[++i]
      else cur += c
    } else if (c === "'" || c === '"') {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in: ${text}`)
  if (inWord) words.push(cur)
  return words
}
