/**
 * ompx inside a real Slurm cluster: the private three-node cluster of scripts/setup-test-slurm.sh
 * (slurmctld and `slurmd -N n1|n2|n3` on this host, NodeAddr 127.0.1.1-3). `ompx run` inside
 * salloc/sbatch takes the allocation, starts its daemons as ONE srun step, and its ranks see their
 * node's Slurm environment; a job checkpointed on Slurm's warning signal in one batch job resumes
 * in an allocation of other nodes; a step task killed under --enable-recovery costs a restart, not
 * the job; scancel leaves nothing behind. Fails (in CI) when the cluster cannot start.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cmdlineOf, currentMark, findMarked, guardLeftovers, leftovers, lines, REPO, shell, userErrorProblems, waitUntil, type RunResult } from '../helpers'
import { BUN, CKPT_HOLD, checksums, dirArgs, lastIter, readGlobal, reference, type AppShape } from './checkpoint-common'

const SCRIPT = join(REPO, 'scripts/setup-test-slurm.sh')
const clusterDir = process.env.OMPX_TEST_SLURM_DIR ?? join(REPO, '.cache/test-slurm')
/** A cluster already up is someone else's: used, and left running. */
const wasRunning = Bun.spawnSync(['bash', SCRIPT, 'status'], { stdout: 'ignore', stderr: 'ignore' }).exitCode === 0
const work = mkdtempSync(join(tmpdir(), 'ompx-slurm-e2e-'))
let slurmConf = ''
let ready = false

beforeAll(() => {
  const setup = Bun.spawnSync(['bash', SCRIPT, 'start'], { stdout: 'pipe', stderr: 'pipe' })
  const conf = /^export SLURM_CONF=(\S+)$/m.exec(setup.stdout.toString())?.[1]
  if (setup.exitCode !== 0 || !conf) {
    const why = `the test Slurm cluster did not start (${SCRIPT}): ${setup.stderr.toString().trim()}`
    // CI runs as root on Debian, where the script installs and starts it: a failure there is real.
    if (process.env.CI || process.getuid?.() === 0) throw new Error(why)
    console.warn(`slurm e2e skipped: ${why}`)
    return
  }
  slurmConf = conf
  ready = true
}, 180_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
  if (ready && !wasRunning) Bun.spawnSync(['bash', SCRIPT, 'stop'], { stdout: 'ignore', stderr: 'ignore' })
})

guardLeftovers()
setDefaultTimeout(90_000)

/**
 * The environment of every Slurm command: our cluster, and no Slurm job we might run inside. The
 * test nodes' names are not this host's names, so the HNP would listen on this host's first
 * non-loopback address; hnp_address keeps all test traffic on 127.0.0.0/8.
 */
function env(): Record<string, string | undefined> {
  const e: Record<string, string | undefined> = { SLURM_CONF: slurmConf, TMPDIR: work, OMPX_MCA_hnp_address: '127.0.0.1' }
  for (const k of Object.keys(process.env)) if (/^SLURM_/.test(k) && k !== 'SLURM_CONF') e[k] = undefined
  return e
}
const sh = (script: string, timeoutMs = 80_000): Promise<RunResult> => shell(script, { env: env(), timeoutMs })
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
const jobOf = (r: RunResult) => /Granted job allocation (\d+)/.exec(r.stderr)?.[1] ?? 'none'
const HOLD: AppShape = { iters: 300, size: 64, sleepMs: 20 }
const holdCmd = (s: AppShape) => `${BUN} ${CKPT_HOLD} --iters ${s.iters} --kb ${s.size} --sleep-ms ${s.sleepMs}`
let n = 0
const fresh = (what: string) => join(work, `${what}-${++n}`)

async function jobGone(job: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await sh(`squeue -h -j ${job} -o %T 2>/dev/null`)).stdout.trim() === '') return
    await Bun.sleep(100)
  }
  throw new Error(`Slurm job ${job} did not end`)
}

/** Submit a batch job; its id. */
async function sbatch(args: string): Promise<string> {
  const r = await sh(`sbatch --parsable ${args}`)
  if (r.code !== 0) throw new Error(`sbatch ${args} failed: ${r.stderr}`)
  return r.stdout.trim()
}

/** This test's `ompx orted` on Slurm node `node` (its task's SLURMD_NODENAME). */
function daemonOn(node: string): number[] {
  return findMarked(currentMark()).filter((pid) => {
    try {
      return cmdlineOf(pid).split(' ')[1] === 'orted' && readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`\0SLURMD_NODENAME=${node}\0`)
    } catch {
      return false
    }
  })
}

describe('ompx in a Slurm cluster', () => {
  test('salloc -N3: the allocation and its slots, the daemons as one srun step, node addresses, the ranks\' Slurm environment', async () => {
    expect(ready).toBe(true)
    const rank = `echo "rank $OMPX_RANK node $SLURMD_NODENAME job $SLURM_JOB_ID procid $SLURM_PROCID localid $SLURM_LOCALID ntasks $SLURM_NTASKS"; [ "$OMPX_RANK" != 0 ] || squeue -h -s -j "$SLURM_JOB_ID" -o "step %i %N"`
    const r = await sh(`salloc -N3 --ntasks-per-node=2 $OMPX run -v --display-map sh -c ${q(rank)}`)
    expect(r.code).toBe(0)
    const job = jobOf(r)
    // Slots from SLURM_TASKS_PER_NODE (2 each), ranks by slot.
    for (const node of ['n1', 'n2', 'n3']) expect(r.stdout).toContain(`Data for node: ${node}\tNum slots: 2\t`)
    for (let i = 0; i < 6; i++) {
      expect(r.stdout).toContain(`rank ${i} node n${Math.floor(i / 2) + 1} job ${job} procid ${i} localid ${i % 2} ntasks 6\n`)
    }
    // One srun step for the daemons, on all three nodes, while the job ran.
    expect(lines(r.stdout).filter((l) => /^step \d+\.\d+ /.test(l))).toEqual([`step ${job}.0 n[1-3]`])
    const srun = /daemons through: (srun .*)/.exec(r.stderr)?.[1] ?? ''
    expect(srun).toContain('srun --nodes=3 --ntasks=3 --ntasks-per-node=1 --nodelist=n[1-3] --kill-on-bad-exit=1 ')
    expect(srun).not.toMatch(/--overcommit|--oversubscribe|--overlap/)
    // Each daemon advertises its own node's NodeAddr.
    for (const i of [1, 2, 3]) expect(r.stderr).toMatch(new RegExp(`node n${i}: daemon pid \\d+ registered from 127\\.0\\.1\\.${i}\\n`))
  })

  test('outside an allocation, --launcher slurm says so in one line', async () => {
    expect(ready).toBe(true)
    const r = await sh('$OMPX run --launcher slurm -np 1 true')
    expect(userErrorProblems(r)).toEqual([])
    expect(r.stderr).toMatch(/^ompx run: the slurm launcher cannot start daemons: not inside a Slurm allocation \(SLURM_JOB_ID is not set\)/)
  })

  test('sbatch: USR1 to the job\'s steps checkpoints it once and ends it with 75; ompx restart resumes it in an allocation of other nodes', async () => {
    expect(ready).toBe(true)
    const want = reference('hold', HOLD)
    const dir = fresh('snap')
    const out = fresh('batch.out')
    const script = fresh('batch.sh')
    writeFileSync(
      script,
      `#!/bin/sh\n$OMPX run -np 4 --mca crs self --mca snapc_checkpoint_on_signal USR1 ${dirArgs(dir).join(' ')} ${holdCmd(HOLD)}\necho "ompx exit $?"\n`,
    )
    const job = await sbatch(`-N2 -w n1,n2 --ntasks-per-node=2 -o ${out} ${script}`)
    const text = () => (existsSync(out) ? readFileSync(out, 'utf8') : '')
    try {
      await waitUntil(() => [0, 1, 2, 3].every((r) => lastIter(text(), r) >= 20), 40_000, 'every rank at iteration 20')
      // As Slurm's --signal=USR1@<secs> does before the time limit: every step's tasks (our daemons).
      expect((await sh(`scancel --signal=USR1 ${job}`)).code).toBe(0)
      await jobGone(job)
    } finally {
      await sh(`scancel ${job}`)
    }
    const batch = text()
    expect(batch).toContain('ompx exit 75\n')
    expect(batch.match(/checkpointing job \S+, then ending it/g)).toHaveLength(1)
    const ref = /checkpoint on SIGUSR1 saved as (ompx_global_snapshot_\S+\.ckpt) seq 0;/.exec(batch)?.[1] ?? ''
    expect(ref).not.toBe('')
    expect(batch).not.toContain('checksum')
    expect(readGlobal(dir, ref).seqs.map((s) => s.seq)).toEqual([0])

    const r = await sh(`salloc -N2 -w n2,n3 --ntasks-per-node=2 $OMPX restart --display-map ${dirArgs(dir).join(' ')} ${ref}`)
    expect(r.code).toBe(0)
    expect(checksums(r.stdout)).toEqual(await want)
    expect(lines(r.stdout).filter((l) => / restarted at /.test(l))).toHaveLength(4)
    expect(r.stdout).toContain('Data for node: n2\t')
    expect(r.stdout).toContain('Data for node: n3\t')
    expect(r.stdout).not.toContain('Data for node: n1\t')
  })

  test('exec ompx run in the batch script: USR1 to the batch shell (scancel --batch, --signal=B:USR1@secs) checkpoints, and with _then continue the job runs to its end', async () => {
    expect(ready).toBe(true)
    const want = reference('hold', HOLD, 2)
    const dir = fresh('snap')
    const out = fresh('batch.out')
    const script = fresh('batch.sh')
    const params = '--mca crs self --mca snapc_checkpoint_on_signal USR1 --mca snapc_checkpoint_on_signal_then continue'
    writeFileSync(script, `#!/bin/sh\nexec $OMPX run -np 2 ${params} ${dirArgs(dir).join(' ')} ${holdCmd(HOLD)}\n`)
    const job = await sbatch(`-N2 --ntasks-per-node=1 -o ${out} ${script}`)
    const text = () => (existsSync(out) ? readFileSync(out, 'utf8') : '')
    try {
      await waitUntil(() => [0, 1].every((r) => lastIter(text(), r) >= 20), 40_000, 'every rank at iteration 20')
      expect((await sh(`scancel --signal=USR1 --batch ${job}`)).code).toBe(0)
      await jobGone(job)
    } finally {
      await sh(`scancel ${job}`)
    }
    const batch = text()
    expect(batch).toMatch(/SIGUSR1 on ompx run: checkpointing job \S+ \(snapc_checkpoint_on_signal\)/)
    const ref = /checkpoint on SIGUSR1 saved as (ompx_global_snapshot_\S+\.ckpt) seq 0\n/.exec(batch)?.[1] ?? ''
    expect(ref).not.toBe('')
    expect(readGlobal(dir, ref).seqs.map((s) => s.seq)).toEqual([0])
    expect(checksums(batch)).toEqual(await want)
    expect((await sh(`scontrol -o show job ${job}`)).stdout).toContain(' ExitCode=0:0 ')
  })

  test('--enable-recovery: the daemon step\'s task on n2 killed, the job restarts from its snapshot on n1 and n3', async () => {
    expect(ready).toBe(true)
    const shape = { ...HOLD, iters: 400 }
    const want = reference('hold', shape, 3)
    const dir = fresh('snap')
    const run = sh(
      `salloc -N3 --ntasks-per-node=1 $OMPX run -v -np 3 --mca crs self --ckpt-interval 1s --enable-recovery --recovery-delay 0.2 ${dirArgs(dir).join(' ')} ${holdCmd(shape)}`,
    )
    // A first snapshot, then SIGKILL to n2's daemon: its step task dies, the step goes on.
    await waitUntil(() => {
      try {
        const ref = readdirSync(dir).find((e) => e.endsWith('.ckpt'))
        return ref !== undefined && readGlobal(dir, ref).seqs.length > 0
      } catch {
        return false
      }
    }, 40_000, 'a first periodic snapshot')
    const [orted] = daemonOn('n2')
    expect(orted).toBeGreaterThan(0)
    process.kill(orted!, 'SIGKILL')
    const r = await run
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/restarting the job from snapshot seq \d+ of \S+ on n1,n3 \(restart 1 of 3\)/)
    expect(r.stderr).toContain(' --kill-on-bad-exit=0 ')
    expect(checksums(r.stdout)).toEqual(await want)
  })

  test('scancel ends every rank, daemon and srun of the job (ranks ignoring SIGTERM included)', async () => {
    expect(ready).toBe(true)
    const out = fresh('cancel.out')
    const script = fresh('cancel.sh')
    writeFileSync(script, `#!/bin/sh\n$OMPX run -np 4 sh -c 'trap "" TERM; echo "rank $OMPX_RANK up"; sleep 300 & wait'\n`)
    const job = await sbatch(`-N2 --ntasks-per-node=2 -o ${out} ${script}`)
    try {
      await waitUntil(() => existsSync(out) && lines(readFileSync(out, 'utf8')).filter((l) => / up$/.test(l)).length === 4, 30_000, 'four ranks up')
      expect(daemonOn('n1')).toHaveLength(1)
      expect(daemonOn('n2')).toHaveLength(1)
      expect(findMarked(currentMark()).filter((pid) => cmdlineOf(pid).startsWith('sleep 300'))).toHaveLength(4)
      expect((await sh(`scancel ${job}`)).code).toBe(0)
      await jobGone(job)
    } finally {
      await sh(`scancel ${job}`)
    }
    // Slurm's KillWait here is 5 s; ours must not need Slurm's SIGKILL to get everything.
    expect((await leftovers(currentMark(), 15_000)).map((pid) => `${pid} ${cmdlineOf(pid)}`)).toEqual([])
  })
})

