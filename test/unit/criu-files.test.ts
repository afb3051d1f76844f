/**
 * The checks a crs criu restart makes before it writes a rank's files back (plugins/crs/criu/
 * files-spec.ts, files-restore.ts): the parameter's grammar, recorded paths, the manifest read
 * back from a snapshot, and the put-back itself in temporary directories — never a write outside
 * the recorded paths, never through a symlink someone else could have planted, nothing written
 * when any entry is bad; warnings for recorded files that changed or vanished.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { restoreFiles, withLeadingLines } from '../../plugins/crs/criu/files-restore'
import { badRecordedPath, captureSpecProblem, checkManifest, type FileEntry, parseCaptureSpec } from '../../plugins/crs/criu/files-spec'

const tmp = mkdtempSync(join(tmpdir(), 'ompx-criu-files-unit-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('crs_criu_capture_files', () => {
  test('globs and the word open, split on commas outside braces', () => {
    expect(parseCaptureSpec('')).toEqual({ open: false, patterns: [] })
    expect(parseCaptureSpec(' open ')).toEqual({ open: true, patterns: [] })
    expect(parseCaptureSpec('data/*.bin, /x/{a,b}.dat ,open')).toEqual({ open: true, patterns: ['data/*.bin', '/x/{a,b}.dat'] })
  })
  test('empty items, too many items and NULs are refused, saying what it must be', () => {
    expect(captureSpecProblem('a,,b')).toMatch(/^comma-separated globs .* without empty items$/)
    expect(captureSpecProblem('a,')).toMatch(/without empty items/)
    expect(captureSpecProblem(Array(65).fill('x').join(','))).toMatch(/^at most 64 /)
    expect(captureSpecProblem('a\0b')).toMatch(/not a usable glob/)
    expect(captureSpecProblem('open,data/*')).toBeUndefined()
  })
})

describe('recorded paths', () => {
  test('absolute, normalised, no pseudo files', () => {
    for (const ok of ['/tmp/x', '/home/u/data.bin', '/dev/shm/seg', '/a b/c']) expect(badRecordedPath(ok)).toBeNull()
    const bad: [unknown, RegExp][] = [
      ['', /empty/],
      ['rel/x', /not absolute/],
      ['/a/../etc/passwd', /"\." or "\.\."/],
      ['/a/./b', /"\." or "\.\."/],
      ['/a//b', /normalised/],
      ['/a/b/', /normalised/],
      ['/', /normalised/],
      ['/proc/self/status', /\/proc/],
      ['/sys/kernel/x', /\/proc/],
      ['/dev/null', /\/proc/],
      ['/dev/shm', /\/proc/],
      ['/tmp/a\0b', /NUL/],
      [42, /empty/],
    ]
    for (const [path, why] of bad) expect(badRecordedPath(path)).toMatch(why)
  })
})

const entry = (o: Partial<FileEntry>): FileEntry => ({ path: '/tmp/x', why: 'open', size: 0, mtimeNs: '0', mode: 0o644, uid: 0, gid: 0, copy: null, ...o })

describe('the manifest read back', () => {
  test('a copy is files/<n>, used once; a path is listed once; numbers are whole', () => {
    const bad: [Partial<FileEntry>[], RegExp][] = [
      [[{ copy: '../x' }], /names its copy "\.\.\/x"/],
      [[{ copy: 'files/../../x' }], /names its copy/],
      [[{ copy: '/etc/passwd' }], /names its copy/],
      [[{ copy: 'files/01' }], /names its copy/],
      [[{ copy: 'files/0' }, { path: '/tmp/y', copy: 'files/0' }], /entry 1 shares its copy files\/0/],
      [[{}, {}], /entry 1 lists \/tmp\/x twice/],
      [[{ path: '/tmp/../etc/shadow' }], /entry 0 path .* has a "\." or "\.\." component/],
      [[{ mode: 0o10000 }], /bad size, mode/],
      [[{ size: -1 }], /bad size, mode/],
      [[{ mtimeNs: '1e9' }], /bad mtime/],
      [[{ why: 'x' as FileEntry['why'] }], /unknown reason/],
    ]
    for (const [files, why] of bad) expect(() => checkManifest({ format: 1, files: files.map(entry) })).toThrow(why)
    expect(() => checkManifest({ format: 2, files: [] })).toThrow(/not a format-1 manifest/)
    expect(() => checkManifest(null)).toThrow(/not a format-1 manifest/)
    expect(checkManifest({ format: 1, files: [entry({ copy: 'files/7' })] }).files).toHaveLength(1)
  })
})

/** A rank dir holding `copies` (files/<n>) and a manifest of `files`. */
function rankDir(files: FileEntry[], copies: Record<string, string | Uint8Array> = {}): string {
  const dir = mkdtempSync(join(tmp, 'rank-'))
  mkdirSync(join(dir, 'files'))
  for (const [name, data] of Object.entries(copies)) writeFileSync(join(dir, name), data)
  writeFileSync(join(dir, 'criu-files.json'), JSON.stringify({ format: 1, files }))
  return dir
}
const who = { jobid: 'j1', rank: 3, node: 'n1' }
const MTIME_NS = '1577934245123456000' // 2020-01-02T03:04:05.123456Z

describe('putting files back', () => {
  test('content, mode and mtime, with missing directories made; the same file for two ranks of one job once', async () => {
    const target = join(tmp, 'made', 'deep', 'data.bin')
    const data = new Uint8Array(70_000).map((_, i) => i % 251)
    const dir = rankDir([entry({ path: target, size: data.length, mode: 0o640, mtimeNs: MTIME_NS, copy: 'files/0' })], { 'files/0': data })
    expect(await restoreFiles({ dir, ...who })).toEqual({ warnings: [], changed: [] })
    expect(Buffer.compare(readFileSync(target), Buffer.from(data))).toBe(0)
    const st = statSync(target, { bigint: true })
    expect(Number(st.mode & 0o777n)).toBe(0o640)
    expect(Math.abs(Number(st.mtimeNs - BigInt(MTIME_NS)))).toBeLessThan(1000)
    // Another rank of the same job, same checkpoint: not written again (the first rank may be mapping it).
    writeFileSync(target, 'changed')
    await restoreFiles({ dir, ...who, rank: 4 })
    expect(readFileSync(target, 'utf8')).toBe('changed')
    await restoreFiles({ dir, ...who, jobid: 'j2' })
    expect(readFileSync(target).length).toBe(data.length)
  })

  test('a symlink in place of the file, or on the way in a directory others may write to, is refused; nothing is written', async () => {
    const outside = join(tmp, 'outside')
    writeFileSync(outside, 'keep')
    const linkDir = mkdtempSync(join(tmp, 'links-'))
    symlinkSync(outside, join(linkDir, 'victim'))
    const other = join(linkDir, 'other')
    const dir = rankDir(
      [entry({ path: other, size: 1, copy: 'files/0' }), entry({ path: join(linkDir, 'victim'), size: 4, copy: 'files/1' })],
      { 'files/0': 'o', 'files/1': 'evil' },
    )
    await expect(restoreFiles({ dir, ...who, jobid: 'sym1' })).rejects.toThrow(/victim is no longer a regular file/)
    expect(readFileSync(outside, 'utf8')).toBe('keep')
    expect(existsSync(other)).toBe(false)

    // A world-writable directory holding a link to a directory: anyone could have made it.
    const shared = mkdtempSync(join(tmp, 'shared-'))
    chmodSync(shared, 0o1777)
    const realDir = mkdtempSync(join(tmp, 'real-'))
    symlinkSync(realDir, join(shared, 'd'))
    const dir2 = rankDir([entry({ path: join(shared, 'd', 'f'), size: 1, copy: 'files/0' })], { 'files/0': 'x' })
    await expect(restoreFiles({ dir: dir2, ...who, jobid: 'sym2' })).rejects.toThrow(/is a symlink others could have made/)
    expect(existsSync(join(realDir, 'f'))).toBe(false)
    // The same link in a directory only its owner may write to is followed (as /var/run -> /run).
    chmodSync(shared, 0o755)
    await restoreFiles({ dir: dir2, ...who, jobid: 'sym3' })
    expect(readFileSync(join(realDir, 'f'), 'utf8')).toBe('x')
  })

  test('a manifest with a bad entry, or a copy missing or of the wrong size, writes nothing', async () => {
    const first = join(tmp, 'first-of-bad')
    const bad = rankDir([entry({ path: first, size: 1, copy: 'files/0' }), entry({ path: '/tmp/../etc/x', copy: null })], { 'files/0': 'a' })
    await expect(restoreFiles({ dir: bad, ...who })).rejects.toThrow(/criu-files\.json: entry 1 path/)
    const short = rankDir([entry({ path: first, size: 1, copy: 'files/0' }), entry({ path: `${first}.2`, size: 5, copy: 'files/1' })], { 'files/0': 'a', 'files/1': 'abc' })
    await expect(restoreFiles({ dir: short, ...who })).rejects.toThrow(/copy of .*first-of-bad\.2 \(files\/1\) is missing or not 5 bytes/)
    const missing = rankDir([entry({ path: first, size: 1, copy: 'files/0' })])
    await expect(restoreFiles({ dir: missing, ...who })).rejects.toThrow(/is missing or not 1 bytes/)
    const damaged = mkdtempSync(join(tmp, 'rank-'))
    writeFileSync(join(damaged, 'criu-files.json'), '{')
    await expect(restoreFiles({ dir: damaged, ...who })).rejects.toThrow(/criu-files\.json/)
    expect(existsSync(first)).toBe(false)
    expect(await restoreFiles({ dir: mkdtempSync(join(tmp, 'none-')), ...who })).toEqual({ warnings: [], changed: [] })
  })

  test('files only recorded: one warning per changed or vanished file, naming file, rank and the parameter', async () => {
    const same = join(tmp, 'same.log')
    const grown = join(tmp, 'grown.log')
    writeFileSync(same, 'abc')
    writeFileSync(grown, 'abcdef')
    utimesSync(same, 1577934245.123456, 1577934245.123456)
    const gone = join(tmp, 'gone.log')
    const dir = rankDir([
      entry({ path: same, size: 3, mtimeNs: MTIME_NS }),
      entry({ path: grown, size: 3, mtimeNs: MTIME_NS, why: 'mmap' }),
      entry({ path: gone, size: 3, mtimeNs: MTIME_NS }),
    ])
    const r = await restoreFiles({ dir, ...who })
    expect(r.changed).toEqual([grown, gone])
    expect(r.warnings).toHaveLength(2)
    expect(r.warnings[0]).toMatch(new RegExp(`^ompx: warning: rank 3 on node n1: ${grown}, mapped shared and writable at the checkpoint, has changed since \\(size 3 -> 6 bytes, modified 2020-01-02T03:04:05\\.123Z -> .*\\); .*--mca crs_criu_capture_files open$`))
    expect(r.warnings[1]).toMatch(new RegExp(`^ompx: warning: rank 3 on node n1: ${gone}, open for writing at the checkpoint, no longer exists; `))
    // A path is any bytes but NUL: shown escaped, a newline in it cannot forge a line of output.
    const forged = await restoreFiles({ dir: rankDir([entry({ path: join(tmp, 'a\nompx: all good') })]), ...who })
    expect(forged.warnings).toHaveLength(1)
    expect(forged.warnings[0]).toContain('a\\nompx: all good, open for writing')
    expect(forged.warnings[0]).not.toContain('\n')
  })

  test('warnings come ahead of the rank stderr', async () => {
    const src = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new TextEncoder().encode('own\n')), c.close()) })
    expect(await new Response(withLeadingLines(src, ['w1', 'w2'])).text()).toBe('w1\nw2\nown\n')
  })
})
