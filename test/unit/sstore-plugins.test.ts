/**
 * The built-in sstore plugins through the registry: central is the default and writes in place;
 * stage writes node-locally, pushes (optionally zstd) through a sink, and removes its copy
 * unless told to keep it. Their parameters are registered and checked.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { registerCoreParams } from '../../src/params/core'
import { Params } from '../../src/params/params'
import { BUILTIN_PLUGINS } from '../../plugins/builtin'
import { Registry } from '../../src/plugins/registry'
import type { SnapshotLocation } from '../../src/sstore/types'
import { FileReceiver } from '../../src/sstore/file-receiver'
import { prepareRankDir, sealRankDir } from '../../src/sstore/local-snapshot'
import { receiverSink } from '../../src/sstore/sinks'

const root = mkdtempSync(join(tmpdir(), 'ompx-sstore-plugins-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function registry(cli: [string, string][] = []) {
  const params = new Params({ home: join(root, 'home'), cwd: root, env: {}, cli })
  registerCoreParams(params)
  return { params, reg: await Registry.load({ params, execPath: join(root, 'no-bin'), builtins: BUILTIN_PLUGINS }) }
}

const loc = (over: Partial<SnapshotLocation> = {}): SnapshotLocation => ({
  globalDir: join(root, 'global'),
  ref: 'ompx_global_snapshot_1.1.ckpt',
  seq: 2,
  rank: 5,
  nodeDir: join(root, 'node1'),
  ...over,
})

describe('sstore plugins', () => {
  test('central is the default and writes into the global seq dir; push is a no-op', async () => {
    const { reg, params } = await registry()
    const central = reg.select('sstore')
    expect(central.name).toBe('central')
    expect(central.direct).toBe(true)
    expect(central.rankDir(loc())).toBe(join(root, 'global', 'ompx_global_snapshot_1.1.ckpt', '2', 'rank_5'))
    await central.push(loc(), [], { write: () => Promise.reject(new Error('must not be called')) })
    expect(params.get('sstore_base_checksum')).toBe('crc32')
    expect(params.get('snapc_base_timeout')).toBe('300')
  })

  for (const compress of ['none', 'zstd']) {
    test(`stage pushes the sealed files (compress=${compress}) and removes the local copy`, async () => {
      const { reg } = await registry([['sstore', 'stage'], ['sstore_stage_compress', compress]])
      const stage = reg.select('sstore')
      expect(stage.name).toBe('stage')
      expect(stage.direct).toBe(false)
      const l = loc({ nodeDir: join(root, `node-${compress}`) })
      const dir = stage.rankDir(l)
      expect(dir).toBe(join(l.nodeDir, 'snapshots', l.ref, '2', 'rank_5'))
      await prepareRankDir(dir)
      writeFileSync(join(dir, 'image'), 'page '.repeat(100_000))
      const meta = await sealRankDir(dir, { rank: 5, node: 'n1', crs: 'self', captureMs: 0 })
      const out = join(root, `hnp-${compress}`)
      const rx = new FileReceiver(out, { expected: meta.files })
      await stage.push(l, meta.files, receiverSink(rx))
      expect(await rx.finish()).toEqual(meta.files)
      expect(readFileSync(join(out, 'image'), 'utf8')).toBe('page '.repeat(100_000))
      expect(existsSync(dir)).toBe(false)
      expect(existsSync(join(l.nodeDir, 'snapshots', l.ref))).toBe(false)
      expect(existsSync(join(l.nodeDir, 'snapshots'))).toBe(true)
    })
  }

  test('stage keeps the local copy with sstore_stage_keep_local=1; bad params are actionable', async () => {
    const { reg, params } = await registry([['sstore', 'stage'], ['sstore_stage_keep_local', '1']])
    expect(params.value('sstore_stage_compress_level')?.def.owner).toBe('sstore:stage')
    const stage = reg.select('sstore')
    const l = loc({ nodeDir: join(root, 'node-keep') })
    mkdirSync(stage.rankDir(l), { recursive: true })
    writeFileSync(join(stage.rankDir(l), 'f'), 'x')
    const meta = await sealRankDir(stage.rankDir(l), { rank: 5, node: 'n1', crs: 'self', captureMs: 0 })
    await stage.push(l, meta.files, { write: async () => {} })
    expect(existsSync(join(stage.rankDir(l), 'f'))).toBe(true)

    const bad = await registry([['sstore', 'stage'], ['sstore_stage_compress', 'lz4']])
    await expect(bad.reg.select('sstore').push(l, meta.files, { write: async () => {} })).rejects.toThrow('sstore_stage_compress is "lz4"; use none or zstd')
  })
})
