/**
 * Plain aligned text tables and uptimes for tool output (no colours: output is often piped or
 * grepped). No imports: `ompx ps` loads it before it knows an HNP is running.
 */
export function renderTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows]
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)))
  return all
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n')
}

/** "3s", "4m 10s", "2h 5m": how long something has been up. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
}
