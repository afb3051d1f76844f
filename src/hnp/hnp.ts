/**
 * The head node process: the job secret, the listener daemons and tools connect to, the
 * contact file tools find it by, the node daemons, and the table of jobs. `ompx run` embeds
 * one for a single job; `ompx hnp` keeps one up for many.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { ActionableError } from '../errors'
import { log } from '../log'
import type { Params } from '../params/params'
import type { Registry } from '../plugins/registry'
import type { DaemonProcess, LauncherPlugin } from '../plugins/types'
import type { NodeInfo } from '../runtime/job'
import { newSecret } from '../wire/secret'
import type { Channel } from '../wire/channel'
import { removeContact, writeContact } from '../wire/contact'
import { serve } from '../wire/server'
import { VERSION } from '../version'
import { DaemonLink } from './launch/daemon-link'
import { JobTable } from './job/job-table'
import { NameService } from './dpm/name-service'
import { serveMigrateTools } from './snapc/migrate-service'
import { serveCheckpointTools, type Coordinators } from './snapc/tool-service'
import type { NodeHandle } from '../node/contract'
import { InProcessNode } from './launch/in-process-node'
import { cleanStaleSessions, sessionRoot } from '../runtime/session'
import { isHnpHost } from '../runtime/hosts'

export interface HnpOptions {
  registry: Registry
  params: Params
  address: string
  /** Jobs here must outlive a lost node (--enable-recovery); launchers are told so. */
  tolerateNodeLoss?: boolean
}

type Waiter = { resolve: (l: DaemonLink) => void }

export class Hnp {
  readonly secret = newSecret()
  readonly started = Date.now()
  readonly jobs = new JobTable()
  /** Service names published by this HNP's jobs (MPI_Publish_name; src/hnp/dpm). */
  readonly names = new NameService()
  readonly nodes = new Map<string, NodeHandle>()
  uri = ''
  private close: () => void = () => {}
  private waiting = new Map<string, Waiter>()
  private daemons: DaemonProcess[] = []
  private jobSeq = 0
  /** Node-local directories of simulated nodes (each daemon uses <root>/<node>). */
  private readonly nodeDirRoot = join(sessionRoot(), `nodes-${process.pid}`)
  /** Checkpoint/restart state of each running job, for checkpoint tools. */
  readonly coordinators: Coordinators = new Map()
  /** A node daemon caught the checkpoint signal (snapc_checkpoint_on_signal). */
  onCheckpointSignal?: (from: string) => void
  /** Extra handlers for tool connections (ompx hnp adds submit/stop). */
  toolHandlers: ((ch: Channel) => void)[] = [serveCheckpointTools(this.coordinators), serveMigrateTools(this.coordinators)]

  private constructor(private opts: HnpOptions) {}

  static async start(opts: HnpOptions): Promise<Hnp> {
    cleanStaleSessions()
    const hnp = new Hnp(opts)
    const transport = opts.registry.select('transport')
    const listener = await serve(transport, opts.address, hnp.secret, (ch) => hnp.accept(ch))
    hnp.uri = listener.uri
    hnp.close = () => listener.close()
    hnp.publish()
    return hnp
  }

  newJobId(): string {
    return `${process.pid}.${++this.jobSeq}`
  }

  /** Rewrite the contact file (tools read jobs from it too). */
  publish(): void {
    writeContact({ pid: process.pid, uri: this.uri, secret: this.secret, started: this.started, jobs: this.jobs.ids(), version: VERSION })
  }

  private accept(ch: Channel): void {
    ch.on('orted.register', (m) => {
      const link = new DaemonLink(m.node, m.pid, m.address, ch, this.heartbeat(), (l, reason) => this.lost(l, reason))
      this.nodes.set(m.node, link)
      this.waiting.get(m.node)?.resolve(link)
      this.waiting.delete(m.node)
      log.debug(`node ${m.node}: daemon pid ${m.pid} registered from ${m.address}`)
    })
    ch.on('orted.ckpt-signal', (m) => this.onCheckpointSignal?.(`node ${m.node}`))
    ch.on('tool.ps', () => ch.send({ t: 'hnp.ps', ...this.summary() }))
    for (const h of this.toolHandlers) h(ch)
  }

  summary() {
    return {
      hnp: { pid: process.pid, uri: this.uri, started: this.started, nodes: [...this.nodes.keys()] },
      jobs: this.jobs.list().map((j) => ({ ...j, procs: j.procs.map((p) => ({ ...p })) })),
    }
  }

  private heartbeat() {
    const p = this.opts.params
    return { intervalMs: (p.getNumber('heartbeat_interval') ?? 1) * 1000, timeoutMs: (p.getNumber('heartbeat_timeout') ?? 10) * 1000 }
  }

  private lost(link: DaemonLink, reason: string): void {
    if (this.nodes.get(link.node) === link) this.nodes.delete(link.node)
    log.debug(`node ${link.node} lost: ${reason}`)
  }

  /**
   * Make every node reachable: this host is served in-process, every other node gets an
   * `ompx orted` started by the launcher. Resolves once all have registered.
   */
  async startDaemons(nodes: NodeInfo[], launcher: LauncherPlugin): Promise<void> {
    const remote = nodes.filter((n) => !isHnpHost(n) && !this.nodes.has(n.name))
    const { registry, params } = this.opts
    for (const n of nodes) if (isHnpHost(n) && !this.nodes.has(n.name)) this.nodes.set(n.name, new InProcessNode(n.name, { nodeDirRoot: this.nodeDirRoot, registry, params, address: this.opts.address }))
    if (remote.length === 0) return
    const registered = remote.map((n) => new Promise<DaemonLink>((resolve) => this.waiting.set(n.name, { resolve })))
    const procs = await launcher.launch({
      nodes: remote,
      hnpUri: this.uri,
      secret: this.secret,
      execPath: process.execPath,
      ortedArgs: ['--node-dir-root', this.nodeDirRoot],
      env: this.opts.params.toEnv(),
      tolerateNodeLoss: this.opts.tolerateNodeLoss,
    })
    this.daemons.push(...procs)
    const timeoutSec = this.opts.params.getNumber('daemon_start_timeout') ?? 60
    let timer: Timer | undefined
    const failure = new Promise<never>((_, reject) => {
      for (const p of procs) {
        p.exited.then((code) => {
          if (this.waiting.has(p.node)) {
            const why = p.stderrTail().trim().split('\n').pop() || `exit status ${code}`
            reject(new ActionableError(`node ${p.node}: the daemon did not start (${launcher.name} launcher): ${why}`))
          }
        })
      }
      timer = setTimeout(() => {
        const missing = [...this.waiting.keys()].join(', ')
        reject(new ActionableError(`daemons on ${missing} did not register within ${timeoutSec} s (daemon_start_timeout)`))
      }, timeoutSec * 1000)
    })
    try {
      await Promise.race([Promise.all(registered), failure])
    } finally {
      clearTimeout(timer)
    }
  }

  /** End every daemon and the listener; nothing of ours stays behind. */
  async shutdown(): Promise<void> {
    for (const n of this.nodes.values()) n.shutdown()
    // No timer when every node was served in-process (`ompx run` on one host): nothing to wait for.
    if (this.daemons.length > 0) {
      let timer: Timer | undefined
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, 3000)))
      await Promise.race([Promise.all(this.daemons.map((d) => d.exited)), grace])
      clearTimeout(timer)
    }
    for (const d of this.daemons) d.kill('SIGKILL')
    this.close()
    removeContact(process.pid)
    rmSync(this.nodeDirRoot, { recursive: true, force: true })
  }
}
