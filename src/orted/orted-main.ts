/**
 * `ompx orted`: one per node. Connects back to the HNP, registers, then runs whatever the HNP
 * tells it: launch ranks, deliver signals and stdin, report output, pids and exits, move
 * snapshot files both ways. It never outlives the HNP: a lost connection or a closed lifeline
 * kills its ranks and ends it.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { errorMessage } from '../errors'
import { log } from '../log'
import type { LaunchSpec } from '../node/contract'
import type { Params } from '../params/params'
import { checkpointSignal } from '../params/core'
import type { Registry } from '../plugins/registry'
import { channelSink, receiveFromChannel } from '../sstore/sinks'
import type { Channel } from '../wire/channel'
import { SNAPC_TO_NODE, type MessageOf, type SnapcToNode } from '../wire/messages'
import { VERSION } from '../version'
import { LocalDaemon } from './local-daemon'
import { OutputForwarder } from './output-forwarder'

export interface OrtedOptions {
  node: string
  address: string
  /** Node-local directory: per-job session dirs of this node's ranks live here. */
  nodeDir?: string
  registry: Registry
  params: Params
}

export class Orted {
  private jobs = new Map<string, LocalDaemon>()
  private outputs = new Map<string, OutputForwarder>()
  private ending = false

  constructor(
    private channel: Channel,
    private opts: OrtedOptions,
  ) {}

  start(): void {
    const ch = this.channel
    ch.on('hnp.launch', (m) => void this.launch(m))
    for (const t of SNAPC_TO_NODE) ch.on(t, ((m: SnapcToNode) => this.job(m.jobid).deliver(m)) as never)
    // Restart staging: the image lands on this node's disk, reading held while the disk is behind.
    ch.on('hnp.file', (m) => void receiveFromChannel(ch, this.job(m.jobid).stagingReceiver(m.rank), m).catch(() => {}))
    ch.on('hnp.signal', (m) => this.jobs.get(m.jobid)?.signal(m.signal as NodeJS.Signals, m.ranks))
    ch.on('hnp.stdin', (m) => this.jobs.get(m.jobid)?.stdin(m.rank, m.data ?? null))
    ch.on('hnp.output-ack', (m) => this.outputs.get(m.jobid)?.acked(m.bytes))
    ch.on('hnp.kill-job', (m) => this.jobs.get(m.jobid)?.signal('SIGKILL'))
    ch.on('hnp.job-end', (m) => this.endJob(m.jobid))
    ch.on('hnp.shutdown', () => this.end('the HNP asked us to shut down', 0))
    ch.on('ping', (m) => ch.send({ t: 'pong', seq: m.seq }))
    ch.onClose(() => this.end('lost the connection to the HNP', 1))
    ch.send({ t: 'orted.register', node: this.opts.node, pid: process.pid, version: VERSION, address: this.opts.address })
  }

  /**
   * SIGUSR1/SIGUSR2 reached this daemon (Slurm signals a job's steps: `--signal=USR1@120`,
   * `scancel --signal`). The checkpoint signal goes to the HNP, which checkpoints the job; any
   * other is passed on to this node's ranks, as ompx run passes on the ones it receives.
   */
  userSignal(sig: 'SIGUSR1' | 'SIGUSR2'): void {
    if (this.ending) return
    if (checkpointSignal(this.opts.params) === sig) this.channel.send({ t: 'orted.ckpt-signal', node: this.opts.node, signal: sig })
    else for (const job of this.jobs.values()) job.signal(sig)
  }

  private get nodeDir(): string {
    return this.opts.nodeDir ?? join(tmpdir(), `ompx-node-${this.opts.node}`)
  }

  private sessionDir(jobid: string): string {
    return join(this.nodeDir, `job-${jobid}`)
  }

  /** This node's state for a job; created by the first message about it (restart staging may precede the launch). */
  private job(jobid: string): LocalDaemon {
    let daemon = this.jobs.get(jobid)
    if (daemon) return daemon
    const ch = this.channel
    const output = new OutputForwarder(ch, jobid)
    this.outputs.set(jobid, output)
    daemon = new LocalDaemon(
      this.opts.node,
      {
        output: (rank, stream, data) => output.send(rank, stream, data),
        // Control, but never before the rank's own output (which took the output lane).
        exit: (e) => output.afterOutput(() => ch.send({ t: 'orted.exit', jobid, rank: e.rank, pid: e.pid, node: e.node, code: e.code, signal: e.signal })),
        report: (m) => void ch.send(m),
      },
      {
        jobid,
        nodeDir: this.nodeDir,
        sessionDir: this.sessionDir(jobid),
        registry: this.opts.registry,
        params: this.opts.params,
        address: this.opts.address,
        snapshotSink: ({ ref, seq, rank }) => channelSink(ch, (c) => ({ t: 'orted.file', jobid, ref, seq, rank, ...c })),
      },
    )
    this.jobs.set(jobid, daemon)
    return daemon
  }

  private async launch(m: MessageOf<'hnp.launch'>): Promise<void> {
    const { jobid } = m
    mkdirSync(this.sessionDir(jobid), { recursive: true, mode: 0o700 })
    const daemon = this.job(jobid)
    const specs: LaunchSpec[] = m.procs.map((p) => ({
      proc: { rank: p.rank, app: p.app, node: p.node, localRank: p.localRank, localSize: p.localSize, nodeRank: p.nodeRank },
      argv: p.argv,
      cwd: p.cwd,
      appEnv: p.appEnv,
      stdin: p.stdin,
      restart: p.restart,
      crs: p.crs,
    }))
    try {
      await daemon.launch({ jobid, size: m.size, universeSize: m.universeSize, pmi: m.pmi }, specs)
    } catch (err) {
      // The HNP checked the program, but this node may differ (a remote host without it).
      this.channel.send({ t: 'orted.error', jobid, message: `node ${this.opts.node}: ${errorMessage(err)}` })
      daemon.signal('SIGKILL')
      return
    }
    this.channel.send({ t: 'orted.launched', jobid, pids: [...daemon.pids()] })
  }

  /** The HNP is done with the job: whatever is still running of it goes, and so does its state here. */
  private endJob(jobid: string): void {
    const daemon = this.jobs.get(jobid)
    this.jobs.delete(jobid)
    this.outputs.get(jobid)?.close()
    this.outputs.delete(jobid)
    daemon?.signal('SIGKILL')
    daemon?.close()
    rmSync(this.sessionDir(jobid), { recursive: true, force: true })
  }

  /** Kill every rank we started and exit; ranks must not outlive their daemon. */
  end(reason: string, code: number): void {
    if (this.ending) return
    this.ending = true
    if (code !== 0) log.warn(`node ${this.opts.node}: ${reason}; killing its ranks`)
    for (const d of this.jobs.values()) d.signal('SIGKILL')
    this.channel.close()
    setTimeout(() => process.exit(code), 50)
  }
}
