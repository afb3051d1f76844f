/**
 * The field checkers the wire catalog (messages.ts) is written in: each one both validates an
 * untrusted value at run time and carries its TypeScript type, so one declaration gives both.
 * Kept apart from the catalog so messages.ts reads as the list of messages.
 */
import { untrusted } from '../log'

/** A field checker: returns null when `v` fits, else what was expected. `_t` only carries the TS type. */
export interface Field<T> {
  check(v: unknown, path: string): string | null
  optional?: true
  readonly _t?: T
}
export type Shape = Record<string, Field<any>>
export type Opt<T> = Field<T> & { optional: true }

const prim = <T>(name: string, ok: (v: unknown) => boolean): Field<T> => ({
  check: (v, path) => (ok(v) ? null : `${path} must be ${name}`),
})

export const str = prim<string>('a string', (v) => typeof v === 'string')
export const num = prim<number>('a number', (v) => typeof v === 'number' && !Number.isNaN(v))
export const bool = prim<boolean>('a boolean', (v) => typeof v === 'boolean')
export const bytes = prim<Uint8Array>('bytes', (v) => v instanceof Uint8Array)
export const unknown_ = prim<unknown>('anything', () => true)

export function oneOf<const L extends string>(...values: L[]): Field<L> {
  return prim<L>(`one of ${values.join('|')}`, (v) => values.includes(v as L))
}
export function nullable<T>(f: Field<T>): Field<T | null> {
  return { check: (v, path) => (v === null ? null : f.check(v, path)) }
}
/** A field that may be absent (a peer's nil is accepted too and removed by `validateMessage`). */
export function optional<T>(f: Field<T>): Opt<T> {
  return { check: (v, path) => (v == null ? null : f.check(v, path)), optional: true }
}
export function arrayOf<T>(f: Field<T>): Field<T[]> {
  return {
    check(v, path) {
      if (!Array.isArray(v)) return `${path} must be an array`
      for (let i = 0; i < v.length; i++) {
        const e = f.check(v[i], `${path}[${i}]`)
        if (e) return e
      }
      return null
    },
  }
}
export function tuple<A, B>(a: Field<A>, b: Field<B>): Field<[A, B]> {
  return {
    check: (v, path) =>
      !Array.isArray(v) || v.length !== 2 ? `${path} must be a pair` : a.check(v[0], `${path}[0]`) ?? b.check(v[1], `${path}[1]`),
  }
}
export function recordOf<T>(f: Field<T>): Field<Record<string, T>> {
  return {
    check(v, path) {
      if (!isPlainObject(v)) return `${path} must be a map`
      for (const [k, x] of Object.entries(v)) {
        const e = f.check(x, `${path}.${untrusted(k, 40)}`)
        if (e) return e
      }
      return null
    },
  }
}
export function shape<S extends Shape>(s: S): Field<Fields<S>> {
  return { check: (v, path) => checkShape(s, v, path) }
}

export type FieldT<F> = F extends Field<infer T> ? T : never
export type Simplify<T> = { [K in keyof T]: T[K] } & {}
/** The TS object type of a shape: optional() fields become `k?: T`. */
export type Fields<S extends Shape> = Simplify<
  { [K in keyof S as S[K] extends Opt<any> ? never : K]: FieldT<S[K]> } & {
    [K in keyof S as S[K] extends Opt<any> ? K : never]?: FieldT<S[K]>
  }
>

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

export function checkShape(s: Shape, v: unknown, path: string): string | null {
  if (!isPlainObject(v)) return `${path} must be a map`
  for (const [k, f] of Object.entries(s)) {
    if (!(k in v) && !f.optional) return `${path}.${k} is missing`
    const e = f.check(v[k], `${path}.${k}`)
    if (e) return e
  }
  return null
}
