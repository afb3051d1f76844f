/**
 * The shape of the code, held by a test: every import of src/ and plugins/ runs along the layer
 * table written in docs/architecture.md (between the `layers` markers), and no module imports
 * itself back through others (no cycles, type-only imports included). The table in the docs is
 * the only copy of the rules, so the docs and the code cannot drift apart.
 */
import { describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { Glob } from 'bun'

const REPO = resolve(import.meta.dir, '../..')

interface Layer {
  name: string
  /** Folder prefixes ("src/hnp/") and files ("src/main.ts"). */
  holds: string[]
  mayImport: Set<string>
}

function readLayers(): Layer[] {
  const doc = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8')
  const table = /<!-- layers:[^>]*-->([\s\S]*?)<!-- \/layers -->/.exec(doc)?.[1]
  if (!table) throw new Error('docs/architecture.md has no <!-- layers --> table')
  return table
    .split('\n')
    .filter((l) => /^\|\s*[a-z]/.test(l) && !/^\|\s*layer\s*\|/.test(l))
    .map((l) => {
      const [name, holds, may] = l.split('|').slice(1, 4).map((c) => c.trim())
      return {
        name: name!,
        holds: [...holds!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
        mayImport: new Set(may!.split(/\s+/).filter((w) => /^[a-z]+$/.test(w))),
      }
    })
}

/** The layer of a repo-relative file: the longest matching entry wins (a file over its folder). */
function layerOf(layers: Layer[], file: string): Layer | undefined {
  let best: { layer: Layer; len: number } | undefined
  for (const layer of layers) {
    for (const h of layer.holds) {
      const hit = h.endsWith('/') ? file.startsWith(h) : file === h
      if (hit && (!best || h.length > best.len)) best = { layer, len: h.length }
    }
  }
  return best?.layer
}

/** Relative imports of a file (static, re-exports, dynamic), resolved to repo-relative .ts files. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO, file), 'utf8')
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s+['"](\.[^'"]+)['"]/gm),
    ...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!)
  const out: string[] = []
  for (const spec of specs) {
    const base = resolve(REPO, dirname(file), spec)
    const hit = [base, `${base}.ts`, join(base, 'index.ts')].find((p) => p.endsWith('.ts') && existsSync(p))
    if (hit) out.push(relative(REPO, hit))
  }
  return out
}

const layers = readLayers()
const files = [...new Glob('{src,plugins}/**/*.ts').scanSync(REPO)].filter((f) => !f.endsWith('.test.ts')).sort()
const graph = new Map(files.map((f) => [f, importsOf(f)]))

describe('layering (docs/architecture.md)', () => {
  test('the table names known layers only', () => {
    const names = new Set(layers.map((l) => l.name))
    expect(layers.length).toBeGreaterThan(10)
    for (const l of layers) for (const m of l.mayImport) expect(`${l.name} -> ${m}: ${names.has(m)}`).toBe(`${l.name} -> ${m}: true`)
  })

  test('every source file belongs to a layer', () => {
    expect(files.filter((f) => !layerOf(layers, f))).toEqual([])
  })

  test('every import runs from a layer to itself or to one it may import', () => {
    const wrong: string[] = []
    for (const [from, targets] of graph) {
      const a = layerOf(layers, from)!
      for (const to of targets) {
        const b = layerOf(layers, to)
        if (!b || b === a || a.mayImport.has(b.name)) continue
        wrong.push(`${from} (${a.name}) -> ${to} (${b.name})`)
      }
    }
    expect(wrong).toEqual([])
  })

  test('no import cycles', () => {
    // Tarjan's strongly connected components: any component of two or more files is a cycle.
    let index = 0
    const idx = new Map<string, number>()
    const low = new Map<string, number>()
    const stack: string[] = []
    const on = new Set<string>()
    const cycles: string[][] = []
    const visit = (v: string): void => {
      idx.set(v, index)
      low.set(v, index++)
      stack.push(v)
      on.add(v)
      for (const w of graph.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w)
          low.set(v, Math.min(low.get(v)!, low.get(w)!))
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = []
        let w: string
        do {
          w = stack.pop()!
          on.delete(w)
          scc.push(w)
        } while (w !== v)
        if (scc.length > 1) cycles.push(scc.sort())
      }
    }
    for (const f of files) if (!idx.has(f)) visit(f)
    expect(cycles).toEqual([])
  })
})
