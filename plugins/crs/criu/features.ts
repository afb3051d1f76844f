/**
 * What this kernel + criu pair can and cannot do beyond `criu check`, each with the message a
 * user should see. Synchronous and cached like binary.ts: asked once per process.
 */
import { release } from 'node:os'
import type { CriuBinary } from './binary'

export interface Feature {
  ok: boolean
  /** One line: what works, or why not and what to do. */
  message: string
}

const cache = new Map<string, Feature>()

/** `criu check --feature NAME`: exit 0 when supported. */
function feature(criu: CriuBinary, name: string): { ok: boolean; out: string } {
  const r = Bun.spawnSync([criu.path, 'check', '--feature', name], { stdout: 'pipe', stderr: 'pipe', timeout: 60_000 })
  return { ok: r.exitCode === 0, out: `${r.stdout}${r.stderr}`.trim() }
}

function cached(key: string, f: () => Feature): Feature {
  let v = cache.get(key)
  if (!v) cache.set(key, (v = f()))
  return v
}

/**
 * Soft-dirty memory tracking, which `criu pre-dump` and `--track-mem` need (incremental and
 * iterative dumps). Without it pre-dump aborts with a BUG in mem.c, so it must not be offered.
 */
export function softDirty(criu: CriuBinary): Feature {
  return cached(`${criu.path}:mem_dirty_track`, () => {
    const r = feature(criu, 'mem_dirty_track')
    return r.ok
      ? { ok: true, message: 'soft-dirty tracking: pre-dump and incremental dumps are available' }
      : { ok: false, message: 'no soft-dirty tracking on this kernel: pre-dump is unavailable (every checkpoint is a full dump)' }
  })
}

/** userfaultfd for `restore --lazy-pages`. */
export function lazyPages(criu: CriuBinary): Feature {
  return cached(`${criu.path}:uffd-noncoop`, () => {
    const r = feature(criu, 'uffd-noncoop')
    return r.ok
      ? { ok: true, message: 'userfaultfd: lazy restore (--lazy-pages) is available' }
      : { ok: false, message: 'no non-cooperative userfaultfd: lazy restore is unavailable' }
  })
}

/** The nftables network lock, which --tcp-established uses when iptables is not installed. */
export function nftablesLock(criu: CriuBinary): Feature {
  return cached(`${criu.path}:network_lock_nftables`, () => {
    const r = feature(criu, 'network_lock_nftables')
    return r.ok
      ? { ok: true, message: 'nftables network lock: available for --tcp-established' }
      : { ok: false, message: 'no nftables network lock: --tcp-established needs iptables installed' }
  })
}

/** [major, minor] of "6.18.44-fc" / "4.1.1". */
export function majorMinor(v: string): [number, number] {
  const m = v.match(/^(\d+)\.(\d+)/)
  return m ? [Number(m[1]), Number(m[2])] : [0, 0]
}

function atLeast(v: [number, number], want: [number, number]): boolean {
  return v[0] > want[0] || (v[0] === want[0] && v[1] >= want[1])
}

/**
 * TCP/UDP sockets. Linux 6.16 restricted SO_PASSCRED/SO_PASSSEC to unix/netlink sockets and criu
 * before 4.2 fails on every inet socket ("Can't get 1:16 opt: Operation not supported"), even a
 * listening one; known from the version numbers alone, no test dump needed.
 */
export function inetSockets(criu: CriuBinary, kernel = release()): Feature {
  if (atLeast(majorMinor(kernel), [6, 16]) && !atLeast(majorMinor(criu.version), [4, 2])) {
    return {
      ok: false,
      message: `criu ${criu.version} cannot dump TCP/UDP sockets on kernel ${kernel} (needs criu >= 4.2: OMPX_CRIU_SUITE=sid scripts/install-criu.sh)`,
    }
  }
  return { ok: true, message: `TCP/UDP sockets: dumpable (established connections need crs_criu_tcp_established)` }
}
