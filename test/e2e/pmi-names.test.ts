/**
 * The name service (docs/pmi.md "Spawn and the name service"): publish_name / lookup_name /
 * unpublish_name (PMI-1) and name-publish / name-lookup / name-unpublish (PMI-2) within one run,
 * from raw clients (test/fixtures/pmi-dpm.ts); and from a real MPICH program (MPI_Publish_name in
 * one job of an `ompx hnp`, MPI_Lookup_name in another). Debian's MPICH 4.0.2 (ch4:ucx) cannot
 * open ports or connect/accept, even under mpiexec.hydra, so its port is any text the test picks.
 */
import { $ } from 'bun'
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FIXTURES, guardLeftovers, lines, spawnOmpx } from '../helpers'
import { INIT, RAW, hnpFixture, pmi2, runIn } from '../fixtures/pmi-dpm'

guardLeftovers()
setDefaultTimeout(60_000)
const tmp = mkdtempSync(join(tmpdir(), 'ompx-names-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
const run = runIn(tmp)
const NAMES = join(tmp, 'mpi-names')

beforeAll(async () => {
  if (!Bun.which('mpicc.mpich')) throw new Error('mpicc.mpich not found: run scripts/install-test-deps.sh (Debian packages mpich libmpich-dev)')
  await $`mpicc.mpich -O2 -o ${NAMES} ${join(FIXTURES, 'mpi-names.c')}`
})

describe('the name service within one run', () => {
  test('publish, lookup, duplicate publish, unpublish, lookup of a missing name; PMI-2 too', async () => {
    const r = await run(['run', '-np', '1', ...RAW, ':', '-np', '1', ...RAW], {
      env: {
        PMI_SCRIPT: JSON.stringify([
          INIT,
          'cmd=barrier_in',
          'cmd=publish_name service=svc-{rank} port=tcp://h:{rank}/a=b;c',
          'cmd=publish_name service=svc-{rank} port=again',
          'cmd=barrier_in',
          'cmd=lookup_name service=svc-0',
          'cmd=lookup_name service=svc-1',
          'cmd=unpublish_name service=svc-{rank}',
          'cmd=unpublish_name service=svc-{rank}',
          'cmd=lookup_name service=svc-{rank}',
          'cmd=lookup_name',
          'cmd=finalize',
        ]),
      },
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    for (const rank of [0, 1]) {
      expect(lines(r.stdout).filter((l) => l.startsWith(`${rank}<`))).toEqual([
        `${rank}< cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0`,
        `${rank}< cmd=barrier_out`,
        `${rank}< cmd=publish_result rc=0 msg=success`,
        `${rank}< cmd=publish_result rc=-1 msg=key_already_present`,
        `${rank}< cmd=barrier_out`,
        // A port keeps its = and ; (MPICH reads a value up to the next space).
        `${rank}< cmd=lookup_result rc=0 msg=success port=tcp://h:0/a=b;c`,
        `${rank}< cmd=lookup_result rc=0 msg=success port=tcp://h:1/a=b;c`,
        `${rank}< cmd=unpublish_result rc=0 msg=success`,
        `${rank}< cmd=unpublish_result rc=-1 msg=service_not_found`,
        `${rank}< cmd=lookup_result rc=-1 msg=service_not_found`,
        `${rank}< cmd=lookup_result rc=-1 msg=lookup_name_needs_service=`,
        `${rank}< cmd=finalize_ack`,
      ])
    }
    const two = await run(['run', '-np', '1', ...RAW], {
      env: {
        PMI_SCRIPT: JSON.stringify([
          'cmd=init pmi_version=2 pmi_subversion=0',
          pmi2('cmd=fullinit;pmirank=0;'),
          pmi2('cmd=name-publish;name=svc2;port=a;;b;'),
          pmi2('cmd=name-lookup;name=svc2;'),
          pmi2('cmd=name-unpublish;name=svc2;'),
          pmi2('cmd=name-lookup;name=svc2;'),
          pmi2('cmd=finalize;'),
        ]),
      },
    })
    expect(two.stderr).toBe('')
    expect(lines(two.stdout).filter((l) => l.includes('cmd=name-'))).toEqual([
      expect.stringMatching(/^0< \d+ +cmd=name-publish-response;rc=0;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-lookup-response;rc=0;port=a;;b;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-unpublish-response;rc=0;$/),
      expect.stringMatching(/^0< \d+ +cmd=name-lookup-response;rc=-1;errmsg=service_not_found;$/),
    ])
  })
})

describe('jobs of one ompx hnp', () => {
  const hnp = hnpFixture(tmp)
  afterEach(() => hnp.stop())

  test('MPICH programs: MPI_Publish_name in one job, MPI_Lookup_name in another; the name goes when its job ends', async () => {
    const pid = await hnp.start()
    const gate = join(tmp, 'gate-names')
    const a = spawnOmpx(['run', '--hnp', pid, '-np', '1', NAMES, 'publish', 'ompx-svc', 'tcp://10.0.0.1:4242', gate], { env: { TMPDIR: tmp }, timeoutMs: 40_000 })
    await a.waitFor(/^published ompx-svc ok$/, 20_000)
    const b = await run(['run', '--hnp', pid, '-np', '1', NAMES, 'lookup', 'ompx-svc'])
    expect(b.code).toBe(0)
    expect(lines(b.stdout)).toEqual(['lookup ompx-svc ok tcp://10.0.0.1:4242'])
    // Raw PMI from a third job: the name is taken, and it is not this job's to unpublish.
    const c = await run(['run', '--hnp', pid, '-np', '1', ...RAW], {
      env: { PMI_SCRIPT: JSON.stringify([INIT, 'cmd=publish_name service=ompx-svc port=mine', 'cmd=unpublish_name service=ompx-svc', 'cmd=finalize']) },
    })
    expect(lines(c.stdout).slice(1, 3)).toEqual([
      expect.stringMatching(/^0< cmd=publish_result rc=-1 msg=key_already_present_\(published_by_job_\S+\)$/),
      expect.stringMatching(/^0< cmd=unpublish_result rc=-1 msg=service_published_by_job_\S+$/),
    ])
    writeFileSync(gate, '')
    const done = await a.done()
    expect(done.code).toBe(0)
    expect(lines(done.stdout)).toEqual(['published ompx-svc ok', 'unpublished ompx-svc ok'])
    // A job that publishes and ends without unpublishing: its name goes with it.
    const d = await run(['run', '--hnp', pid, '-np', '1', ...RAW], { env: { PMI_SCRIPT: JSON.stringify([INIT, 'cmd=publish_name service=left-behind port=p', 'cmd=finalize']) } })
    expect(d.code).toBe(0)
    const e = await run(['run', '--hnp', pid, '-np', '1', NAMES, 'lookup', 'left-behind'])
    expect(lines(e.stdout)).toEqual(['lookup left-behind failed '])
  })
})
