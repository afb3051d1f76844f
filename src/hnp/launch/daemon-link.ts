/**
 * The HNP's end of one `ompx orted`: a NodeHandle over an authenticated channel. Routes the
 * daemon's reports to the jobs attached to it, acknowledges its output once taken (the daemon's
 * output window, src/orted/output-forwarder.ts), pings it, and declares the node lost when the
 * connection drops or the daemon stops answering.
 */
import type { JobIdentity, LaunchSpec, NodeHandle, NodeJob, NodeJobEvents } from '../../node/contract'
import { channelSink, receiveFromChannel } from '../../sstore/sinks'
import type { SnapshotSink } from '../../sstore/types'
import type { Channel } from '../../wire/channel'
import { NODE_TO_SNAPC, type NodeToSnapc, type SnapcToNode } from '../../wire/messages'
import { writeStderr } from '../../tty'

export interface HeartbeatConfig {
  intervalMs: number
  timeoutMs: number
}

export class DaemonLink implements NodeHandle {
  private jobs = new Map<string, RemoteJobDaemon>()
  private lastSeen = Date.now()
  private timer: Timer
  private seq = 0
  /** Output bytes per job taken since the last `hnp.output-ack`, sent together once per turn of the event loop. */
  private acks = new Map<string, number>()
  lostReason: string | null = null

  constructor(
    readonly node: string,
    readonly pid: number,
    readonly address: string,
    private channel: Channel,
    hb: HeartbeatConfig,
    private onLost: (link: DaemonLink, reason: string) => void,
  ) {
    channel.on('orted.output', (m) => {
      const wait = this.jobs.get(m.jobid)?.events.output(m.rank, m.stream, m.data)
      // Taken once our own writer has room: until then the daemon's window stays used up.
      if (wait) void wait.then(() => this.ack(m.jobid, m.data.length))
      else this.ack(m.jobid, m.data.length)
    })
    channel.on('orted.exit', (m) => this.jobs.get(m.jobid)?.exited(m))
    channel.on('orted.launched', (m) => this.jobs.get(m.jobid)?.launchedPids(m.pids))
    channel.on('orted.error', (m) => (m.jobid ? this.jobs.get(m.jobid)?.failed(m.message) : undefined))
    for (const t of NODE_TO_SNAPC) channel.on(t, ((m: NodeToSnapc) => this.jobs.get(m.jobid)?.events.report?.(m)) as never)
    // Snapshot files: into the checkpoint's receiver; while the disk is behind, reading is held
    // (TCP backpressure makes the daemon's sink wait). A failed write fails the rank's sync.
    channel.on('orted.file', (m) => {
      const rx = this.jobs.get(m.jobid)?.events.snapshotReceiver?.(m)
      if (rx) void receiveFromChannel(channel, rx, m).catch(() => {})
    })
    channel.on('pong', () => (this.lastSeen = Date.now()))
    channel.onClose(() => this.lose('its daemon closed the connection (daemon killed or crashed)'))
    this.timer = setInterval(() => {
      if (Date.now() - this.lastSeen > hb.timeoutMs) {
        this.lose(`its daemon (pid ${pid}) has not answered for ${Math.round(hb.timeoutMs / 1000)} s`)
      } else this.channel.send({ t: 'ping', seq: ++this.seq })
    }, hb.intervalMs)
    this.timer.unref()
  }

  attach(jobid: string, events: NodeJobEvents): NodeJob {
    const d = new RemoteJobDaemon(this.node, jobid, this.channel, events)
    this.jobs.set(jobid, d)
    return d
  }

  /** The daemon drops the job's state too (app socket, staged images, session dir). */
  detach(jobid: string): void {
    this.jobs.delete(jobid)
    this.send({ t: 'hnp.job-end', jobid })
  }

  private ack(jobid: string, bytes: number): void {
    if (this.acks.size === 0) setImmediate(() => this.flushAcks())
    this.acks.set(jobid, (this.acks.get(jobid) ?? 0) + bytes)
  }

  private flushAcks(): void {
    for (const [jobid, bytes] of this.acks) this.send({ t: 'hnp.output-ack', jobid, bytes })
    this.acks.clear()
  }

  send(msg: Parameters<Channel['send']>[0]): void {
    if (!this.lostReason) this.channel.send(msg)
  }

  private lose(reason: string): void {
    if (this.lostReason) return
    this.lostReason = reason
    clearInterval(this.timer)
    this.channel.close()
    for (const job of this.jobs.values()) job.events.lost?.(this.node, reason)
    this.onLost(this, reason)
  }

  /** Orderly stop: ask the daemon to exit (it kills anything left). */
  shutdown(): void {
    clearInterval(this.timer)
    this.send({ t: 'hnp.shutdown' })
    this.lostReason = 'shut down'
  }
}

/** One job's ranks on one remote node, as the job runner sees them. */
class RemoteJobDaemon implements NodeJob {
  readonly inProcess = false
  private pidsByRank = new Map<number, number>()
  private alive = new Set<number>()

  constructor(
    readonly node: string,
    private jobid: string,
    private channel: Channel,
    readonly events: NodeJobEvents,
  ) {}

  async launch(job: JobIdentity, specs: LaunchSpec[], verified?: Promise<void>): Promise<void> {
    // A remote node is told nothing until the images are verified: the wire has no "hold".
    await verified
    for (const s of specs) this.alive.add(s.proc.rank)
    const procs = specs.map((s) => ({ ...s.proc, argv: s.argv, cwd: s.cwd, appEnv: s.appEnv, stdin: s.stdin, restart: s.restart, crs: s.crs }))
    this.channel.send({ t: 'hnp.launch', jobid: this.jobid, size: job.size, universeSize: job.universeSize, pmi: job.pmi, procs })
  }

  deliver(msg: SnapcToNode): void {
    this.channel.send(msg)
  }

  imageSink(rank: number): SnapshotSink {
    return channelSink(this.channel, (c) => ({ t: 'hnp.file', jobid: this.jobid, rank, ...c }))
  }

  launchedPids(pids: [number, number][]): void {
    for (const [rank, pid] of pids) {
      this.pidsByRank.set(rank, pid)
      this.events.launched?.(rank, pid)
    }
  }

  exited(m: { rank: number; pid: number; node: string; code: number | null; signal: string | null }): void {
    if (!this.alive.delete(m.rank)) return
    this.events.exit({ rank: m.rank, pid: m.pid, node: m.node, code: m.code, signal: m.signal as NodeJS.Signals | null })
  }

  /** The daemon could not start this job's ranks: report each as failed to start (127). */
  failed(message: string): void {
    writeStderr(`ompx: ${message}\n`)
    for (const rank of [...this.alive]) this.exited({ rank, pid: 0, node: this.node, code: 127, signal: null })
  }

  pids(): Map<number, number> {
    return new Map(this.pidsByRank)
  }

  running(): number[] {
    return [...this.alive]
  }

  forget(ranks: number[]): void {
    for (const r of ranks) this.alive.delete(r)
  }

  signal(sig: NodeJS.Signals, ranks?: number[]): void {
    this.channel.send({ t: 'hnp.signal', jobid: this.jobid, signal: sig, ranks })
  }

  stdin(rank: number, data: Uint8Array | null): void {
    this.channel.send({ t: 'hnp.stdin', jobid: this.jobid, rank, data })
  }
}
