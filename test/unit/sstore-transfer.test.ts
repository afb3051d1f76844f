/**
 * Snapshot file transfer: sendFiles -> FileReceiver, raw and zstd, through an in-memory sink and
 * over a real authenticated channel pair with flow control (drained() on the sender, held reads
 * on the receiver). A peer cannot write outside the receiver's root or inflate a bomb, and
 * damage in transit is caught by the checksums.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { log } from '../../src/log'
import { ActionableError } from '../../src/errors'
import type { HostApi, TransportPlugin } from '../../src/plugins/types'
import type { SnapshotFileInfo, SnapshotSink } from '../../src/sstore/types'
import tcpFactory from '../../plugins/transport/tcp'
import type { FileChunk } from '../../src/sstore/chunk-codec'
import { FileReceiver } from '../../src/sstore/file-receiver'
import { sendFiles } from '../../src/sstore/file-sender'
import { sealRankDir } from '../../src/sstore/local-snapshot'
import { channelSink, receiveFromChannel, receiverSink } from '../../src/sstore/sinks'
import { newSecret } from '../../src/wire/secret'
import { clientConnect, type Channel } from '../../src/wire/channel'
import { serve } from '../../src/wire/server'
import { spawnRank } from '../../src/runtime/rank-process'

const root = mkdtempSync(join(tmpdir(), 'ompx-sstore-xfer-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const fresh = (name: string) => join(root, `${name}${++n}`)

function randomBytes(len: number): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(len, i + 65536)))
  return b
}

/** A sealed rank dir: one random (incompressible) file, one compressible, one empty, one nested. */
async function sourceDir(bigBytes = 9 * 1024 * 1024 + 17) {
  const dir = fresh('src')
  mkdirSync(join(dir, 'nested/deeper'), { recursive: true })
  writeFileSync(join(dir, 'random.bin'), randomBytes(bigBytes))
  writeFileSync(join(dir, 'text.txt'), 'all work and no play '.repeat(400_000))
  writeFileSync(join(dir, 'empty'), '')
  writeFileSync(join(dir, 'nested/deeper/x'), 'x')
  const meta = await sealRankDir(dir, { rank: 0, node: 'n1', crs: 'self', captureMs: 0 })
  return { dir, files: meta.files }
}

function sameTree(a: string, b: string, files: SnapshotFileInfo[]) {
  for (const f of files) expect(Bun.hash.crc32(readFileSync(join(b, f.path)))).toBe(Bun.hash.crc32(readFileSync(join(a, f.path))))
}

describe('in-memory round trip', () => {
  for (const compress of ['none', 'zstd'] as const) {
    test(`compress=${compress}: collected chunks replay into an identical tree`, async () => {
      const { dir, files } = await sourceDir()
      const chunks: FileChunk[] = []
      const sink: SnapshotSink = { write: async (path, offset, data, codec, last) => void chunks.push({ path, offset, data, codec, last }) }
      const stats = await sendFiles(dir, files, sink, { compress })
      expect(stats.bytes).toBe(files.reduce((a, f) => a + f.size, 0))
      expect(chunks.filter((c) => c.last).length).toBe(files.length)
      expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(4 * 1024 * 1024)
      if (compress === 'zstd') {
        // Per chunk: text compresses, random data does not and goes raw.
        expect(chunks.some((c) => c.path === 'text.txt' && c.codec === 'zstd')).toBe(true)
        expect(chunks.filter((c) => c.path === 'random.bin').every((c) => c.codec === 'raw')).toBe(true)
        expect(stats.wireBytes).toBeLessThan(stats.bytes)
      } else expect(chunks.every((c) => c.codec === 'raw')).toBe(true)
      const out = fresh('dst')
      const rx = new FileReceiver(out, { expected: files })
      for (const c of chunks) await rx.write(c)
      expect(await rx.finish()).toEqual(files)
      sameTree(dir, out, files)
    })
  }

  test('receiverSink writes straight into a receiver, with sha256 sums', async () => {
    const dir = fresh('src')
    mkdirSync(dir)
    writeFileSync(join(dir, 'a'), randomBytes(5_000_000))
    const { files } = await sealRankDir(dir, { rank: 0, node: 'n', crs: 'x', captureMs: 0 }, 'sha256')
    const out = fresh('dst')
    const rx = new FileReceiver(out)
    await sendFiles(dir, files, receiverSink(rx, 1), { compress: 'zstd', level: 1 })
    // The receiver summed with crc32; finish() reads the file back once to compare the sha256.
    expect((await rx.finish(files)).map((f) => f.size)).toEqual([5_000_000])
    sameTree(dir, out, files)
  })

  test('a file changed after sealing is refused by the sender', async () => {
    const { dir, files } = await sourceDir(1000)
    writeFileSync(join(dir, 'empty'), 'now it is not')
    await expect(sendFiles(dir, files, { write: async () => {} })).rejects.toThrow(`${join(dir, 'empty')} changed after the snapshot was sealed (0 bytes recorded, 13 now)`)
  })

  test('damage in transit is caught by the checksum', async () => {
    const { dir, files } = await sourceDir(100_000)
    const out = fresh('dst')
    const rx = new FileReceiver(out)
    const tamper: SnapshotSink = {
      write: (path, offset, data, codec, last) => {
        const d = path === 'random.bin' ? Uint8Array.from(data, (b, i) => (i === 99 ? b ^ 1 : b)) : data
        return rx.write({ path, offset, data: d, codec, last })
      },
    }
    await sendFiles(dir, files, tamper)
    const err = await rx.finish(files).catch((e) => e)
    expect(err).toBeInstanceOf(ActionableError)
    expect(err.message).toMatch(/random\.bin arrived corrupt \(checksum crc32:\w{8} expected, crc32:\w{8} received\)$/)
  })
})

describe('a hostile or broken sender', () => {
  const chunk = (path: string, data = 'x', extra: Partial<FileChunk> = {}): FileChunk => ({ path, offset: 0, data: new TextEncoder().encode(data), codec: 'raw', last: true, ...extra })

  test('paths that could escape the root are refused and nothing is written outside', async () => {
    const parent = fresh('jail')
    const out = join(parent, 'root')
    for (const p of ['../escape', '/tmp/abs', 'a/../../escape', 'a/./b', './a', 'a//b', '', 'a\\..\\b', 'a\0b', 'a/..']) {
      const rx = new FileReceiver(out)
      await expect(rx.write(chunk(p))).rejects.toThrow('refusing file path')
    }
    expect(existsSync(join(parent, 'escape'))).toBe(false)
    expect(existsSync('/tmp/abs')).toBe(false)
  })

  test('symlinks already inside the root are never followed', async () => {
    const outside = fresh('outside')
    mkdirSync(outside)
    writeFileSync(join(outside, 'victim'), 'original')
    const out = fresh('root')
    mkdirSync(out)
    symlinkSync(outside, join(out, 'dirlink'))
    symlinkSync(join(outside, 'victim'), join(out, 'filelink'))
    await expect(new FileReceiver(out).write(chunk('dirlink/victim', 'pwned'))).rejects.toThrow('dirlink is not a directory')
    await expect(new FileReceiver(out).write(chunk('filelink', 'pwned'))).rejects.toThrow()
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('original')
    expect(readdirSync(outside)).toEqual(['victim'])
  })

  test('out-of-order chunks, repeats, unexpected files and extra bytes are refused; the receiver stays failed', async () => {
    const rx = new FileReceiver(fresh('dst'))
    await rx.write(chunk('a', 'xy', { last: false }))
    await expect(rx.write(chunk('a', 'z', { offset: 5 }))).rejects.toThrow('a: chunk at offset 5, expected 2')
    await expect(rx.write(chunk('b'))).rejects.toThrow('a: chunk at offset 5, expected 2')
    await expect(rx.finish()).rejects.toThrow('chunk at offset 5')

    const rx2 = new FileReceiver(fresh('dst'))
    await rx2.write(chunk('a'))
    await expect(rx2.write(chunk('a'))).rejects.toThrow('a was sent twice')

    const rx3 = new FileReceiver(fresh('dst'), { expected: [{ path: 'a', size: 1, sum: 'crc32:00000000' }] })
    await expect(rx3.write(chunk('b'))).rejects.toThrow('b is not a file of this snapshot')
    const rx4 = new FileReceiver(fresh('dst'), { expected: [{ path: 'a', size: 1, sum: 'crc32:00000000' }] })
    await expect(rx4.write(chunk('a', 'xx'))).rejects.toThrow('a: more than the 1 bytes recorded')

    const rx5 = new FileReceiver(fresh('dst'))
    await expect(rx5.write(chunk('a', 'x', { offset: 3 }))).rejects.toThrow('first chunk at offset 3, expected 0')
  })

  test('a transfer that stops half-way fails finish(); abort closes the files', async () => {
    const rx = new FileReceiver(fresh('dst'))
    await rx.write(chunk('a', 'xy', { last: false }))
    await expect(rx.finish()).rejects.toThrow('transfer ended with a incomplete')
    const rx2 = new FileReceiver(fresh('dst'))
    await rx2.write(chunk('a', 'xy', { last: false }))
    await rx2.abort()
    await expect(rx2.write(chunk('a', 'z', { offset: 2 }))).rejects.toThrow('transfer aborted')
  })

  test('a caller that fires and forgets is safe: the failure surfaces in finish()', async () => {
    const rx = new FileReceiver(fresh('dst'))
    void rx.write(chunk('../x'))
    await expect(rx.finish()).rejects.toThrow('refusing file path "../x": it has a ".." component')
  })

  test('a zstd bomb is not inflated past the chunk limit', async () => {
    const bomb = Bun.zstdCompressSync(new Uint8Array(64 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(10_000)
    const rx = new FileReceiver(fresh('dst'))
    await expect(rx.write({ path: 'a', offset: 0, data: bomb, codec: 'zstd', last: true })).rejects.toThrow('bad zstd chunk')
    const rx2 = new FileReceiver(fresh('dst'))
    await expect(rx2.write({ path: 'a', offset: 0, data: new Uint8Array([1, 2, 3, 4, 5, 6]), codec: 'zstd', last: true })).rejects.toThrow('bad zstd chunk')
  })
})

describe('over an authenticated channel', () => {
  const host: HostApi = { version: 'test', log, param: () => undefined, ActionableError, spawnRank }
  const SECRET = newSecret()

  /** A connected pair: `node` (client, orted) sends, `hnp` (server side) receives into `out`. */
  async function pair(onServer: (ch: Channel) => void) {
    const tcp = (await tcpFactory(host)) as TransportPlugin
    const server = await serve(tcp, '127.0.0.1', SECRET, onServer)
    const node = await clientConnect(tcp, server.uri, SECRET, 'orted')
    return { node, close: () => (node.close(), server.close()) }
  }

  const toMsg = (c: FileChunk) => ({ t: 'orted.file' as const, jobid: '1.1', ref: 'r', seq: 0, rank: 0, ...c })

  for (const compress of ['none', 'zstd'] as const) {
    test(`round trip, compress=${compress}`, async () => {
      const { dir, files } = await sourceDir()
      const out = fresh('dst')
      const rx = new FileReceiver(out, { expected: files })
      const failures: unknown[] = []
      const p = await pair((ch) => ch.on('orted.file', (m) => void receiveFromChannel(ch, rx, m, 1).catch((e) => failures.push(e))))
      try {
        await sendFiles(dir, files, channelSink(p.node, toMsg), { compress })
        await Bun.sleep(0)
        for (let i = 0; rx.received().length < files.length && i < 500; i++) await Bun.sleep(10)
        expect(await rx.finish()).toEqual(files)
        expect(failures).toEqual([])
        sameTree(dir, out, files)
      } finally {
        p.close()
      }
    })
  }

  test('drained() holds the sender while the receiver does not read (64 MiB file)', async () => {
    const dir = fresh('src')
    mkdirSync(dir)
    writeFileSync(join(dir, 'big.bin'), randomBytes(64 * 1024 * 1024))
    const { files } = await sealRankDir(dir, { rank: 0, node: 'n', crs: 'x', captureMs: 0 })
    const out = fresh('dst')
    const rx = new FileReceiver(out, { expected: files })
    let release: (() => void) | undefined
    const p = await pair((ch) => {
      release = ch.holdReading() // the HNP is "busy": nothing is read until released
      ch.on('orted.file', (m) => void receiveFromChannel(ch, rx, m))
    })
    try {
      let sent = 0
      let maxQueued = 0
      const inner = channelSink(p.node, toMsg)
      const sink: SnapshotSink = {
        async write(...a) {
          const w = inner.write(...a)
          maxQueued = Math.max(maxQueued, p.node.queuedBytes)
          await w
          sent += a[2].length
        },
      }
      const sending = sendFiles(dir, files, sink)
      await Bun.sleep(400)
      // Kernel socket buffers absorb a few MiB; the rest must wait in drained(), not in memory.
      expect(sent).toBeLessThan(32 * 1024 * 1024)
      expect(maxQueued).toBeLessThanOrEqual(8 * 1024 * 1024 + 4 * 1024 * 1024 + 1024)
      expect(maxQueued).toBeGreaterThan(0)
      release!()
      await sending
      expect(sent).toBe(64 * 1024 * 1024)
      for (let i = 0; rx.received().length < 1 && i < 1000; i++) await Bun.sleep(10)
      expect(await rx.finish()).toEqual(files)
    } finally {
      p.close()
    }
  })

  test('drained() rejects once the channel is closed', async () => {
    const p = await pair(() => {})
    p.node.close()
    await expect(p.node.drained()).rejects.toThrow('is closed')
    await expect(channelSink(p.node, toMsg).write('a', 0, new Uint8Array(1), 'raw', true)).rejects.toThrow('closed during the snapshot transfer')
    p.close()
  })
})
