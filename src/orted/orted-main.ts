/**
 * `ompx orted`: one per node. Connects back to the HNP, registers, then runs whatever the HNP
 * tells it: launch ranks, deliver signals and stdin, report output, pids and exits. It never
 * outlives the HNP: a lost connection or a closed lifeline kills its ranks and ends it.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { errorMessage } from '../errors'
import { log } from '../log'
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { Channel } from '../wire/channel'
import { HNP_TO_NODE, type HnpToNode, type LaunchSpecWire } from '../wire/messages'
import { VERSION } from '../version'
import { LocalDaemon, type LaunchSpec } from './local-daemon'

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
  private ending = false

  constructor(
    private channel: Channel,
    private opts: OrtedOptions,
  ) {}

  start(): void {
    const ch = this.channel
    ch.on('hnp.launch', (m) => void this.launch(m.jobid, m.procs))
    for (const t of HNP_TO_NODE) ch.on(t, ((m: HnpToNode) => this.job(m.jobid).deliver(m)) as never)
    ch.on('hnp.signal', (m) => this.jobs.get(m.jobid)?.signal(m.signal as NodeJS.Signals, m.ranks))
    ch.on('hnp.stdin', (m) => this.jobs.get(m.jobid)?.stdin(m.rank, m.data ?? null))
    ch.on('hnp.kill-job', (m) => this.jobs.get(m.jobid)?.signal('SIGKILL'))
    ch.on('hnp.shutdown', () => this.end('the HNP asked us to shut down', 0))
    ch.on('ping', (m) => ch.send({ t: 'pong', seq: m.seq }))
    ch.onClose(() => this.end('lost the connection to the HNP', 1))
    ch.send({ t: 'orted.register', node: this.opts.node, pid: process.pid, version: VERSION, address: this.opts.address })
  }

  private get nodeDir(): string {
    return this.opts.nodeDir ?? join(tmpdir(), `ompx-node-${this.opts.node}`)
  }

  /** This node's state for a job; created by the first message about it (restart staging may precede the launch). */
  private job(jobid: string): LocalDaemon {
    let daemon = this.jobs.get(jobid)
    if (daemon) return daemon
    const sessionDir = join(this.nodeDir, `job-${jobid}`)
    daemon = new LocalDaemon(
      this.opts.node,
      {
        output: (rank, stream, data) => this.channel.send({ t: 'orted.output', jobid, rank, stream, data }),
        exit: (e) => {
          this.channel.send({ t: 'orted.exit', jobid, rank: e.rank, pid: e.pid, node: e.node, code: e.code, signal: e.signal })
          if (daemon!.running().length === 0) this.jobs.delete(jobid)
        },
        report: (m) => void this.channel.send(m),
      },
      {
        jobid,
        nodeDir: this.nodeDir,
        sessionDir,
        registry: this.opts.registry,
        params: this.opts.params,
        sendFile: async (m) => {
          this.channel.send(m)
          await this.channel.drained()
        },
        // send() encodes the chunk into a frame at once: the sender may reuse its buffer.
        sendFileReleasesData: true,
      },
    )
    this.jobs.set(jobid, daemon)
    return daemon
  }

  private async launch(jobid: string, procs: LaunchSpecWire[]): Promise<void> {
    const sessionDir = join(this.nodeDir, `job-${jobid}`)
    mkdirSync(sessionDir, { recursive: true, mode: 0o700 })
    const daemon = this.job(jobid)
    const specs: LaunchSpec[] = procs.map((p) => ({
      proc: { rank: p.rank, app: p.app, node: p.node, localRank: p.localRank, localSize: p.localSize, nodeRank: p.nodeRank },
      argv: p.argv,
      cwd: p.cwd,
      env: { ...p.env, OMPX_SESSION_DIR: sessionDir },
      stdin: p.stdin,
      restart: p.restart,
      crs: p.crs,
    }))
    try {
      await daemon.launch(specs)
    } catch (err) {
      // The HNP checked the program, but this node may differ (a remote host without it).
      this.channel.send({ t: 'orted.error', jobid, message: `node ${this.opts.node}: ${errorMessage(err)}` })
      daemon.signal('SIGKILL')
      return
    }
    this.channel.send({ t: 'orted.launched', jobid, pids: [...daemon.pids()] })
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
