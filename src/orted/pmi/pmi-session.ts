/**
 * One rank's PMI connection: the commands of PMI-1 (and PMI-2 once the client asks for it at
 * init, pmi2-commands.ts) and what each answers. A client that breaks the protocol gets an error
 * line (`cmd=error rc=-1 msg=...`, or the command's own response with rc=-1), never a hang and
 * never a crash of the daemon; only broken framing (an endless line) closes the connection.
 */
import { log } from '../../log'
import type { SocketConn } from '../../wire/socket'
import type { PmiJob, PmiRank } from './pmi-job'
import { pmi2Command } from './pmi2-commands'
import { pmi1NameCommand, pmi1Spawn } from './pmi-dpm'
import { SpawnBlock } from './spawn-block'
import { PMI_MAXES, PmiFramer, parsePmi1, parsePmi2, pmi1, pmi2, type PmiFields } from './pmi-wire'

const enc = new TextEncoder()

export class PmiSession implements PmiRank {
  private readonly framer: PmiFramer
  inited = false
  finalized = false
  /** A multi-line `mcmd=spawn` request being read, until its last `endcmd`. */
  private spawnBlock: SpawnBlock | null = null
  private ended = false
  /** The rank sent `abort`: its end is the abort's, not a missing finalize. */
  private aborted = false

  constructor(
    private readonly conn: SocketConn,
    readonly job: PmiJob,
    /** Known from the socketpair in fd mode; from `initack pmiid=` in port mode. */
    public rank: number | null,
    private readonly claimId: (id: number) => number | undefined,
  ) {
    this.framer = new PmiFramer((text) => this.onMessage(text))
    conn.onData((bytes) => {
      try {
        const broken = this.framer.push(bytes)
        if (broken) this.fail(broken)
      } catch (err) {
        log.error(`pmi: ${err instanceof Error ? err.message : String(err)}`)
        this.fail('internal error')
      }
    })
  }

  get version(): 1 | 2 {
    return this.framer.version
  }

  send(cmd: string, fields: Record<string, string | number> = {}): void {
    if (this.ended) return
    this.conn.write(enc.encode(this.version === 2 ? pmi2(cmd, fields) : pmi1(cmd, fields)))
  }

  /** The framing is broken: say why, then close. */
  private fail(why: string): void {
    this.send('error', { rc: -1, msg: why })
    this.close()
  }

  close(): void {
    this.ended = true
    this.conn.close()
  }

  /**
   * The connection is gone: true when the rank had inited and neither finalized nor aborted
   * (its exit, if it says nothing worse, then ends the job: see PmiServer.rankGone).
   */
  gone(): boolean {
    this.ended = true
    return this.inited && !this.finalized && this.rank !== null && !this.aborted
  }

  private onMessage(text: string): void {
    if (this.spawnBlock) return this.spawnLine(text)
    const msg = this.version === 2 ? parsePmi2(text) : parsePmi1(text)
    if (!msg.ok) return this.send('error', { rc: -1, msg: `malformed PMI message: ${msg.why}` })
    if (this.version === 2) return pmi2Command(this, msg.cmd, msg.fields)
    this.pmi1Command(msg.cmd, msg.fields)
  }

  private pmi1Command(cmd: string, f: PmiFields): void {
    if (cmd === 'init') return this.init(f)
    if (cmd === 'initack') return this.initack(f)
    if (this.rank === null) return this.send('error', { rc: -1, msg: `${cmd} before initack: this connection has not said which rank it is` })
    if (cmd === 'spawn') return this.startSpawn()
    const j = this.job
    switch (cmd) {
      case 'get_maxes':
        return this.send('maxes', { kvsname_max: PMI_MAXES.kvsname, keylen_max: PMI_MAXES.key, vallen_max: PMI_MAXES.value })
      case 'get_appnum':
        return this.send('appnum', { appnum: j.appOf(this.rank) })
      case 'get_my_kvsname':
        return this.send('my_kvsname', { kvsname: j.kvsname })
      case 'get_universe_size':
        return this.send('universe_size', { size: j.universeSize })
      case 'put': {
        const why = this.putError(f.get('kvsname'), f.get('key'), f.get('value'))
        if (why) return this.send('put_result', { rc: -1, msg: why })
        const refused = this.put(f.get('key')!, f.get('value')!)
        return this.send('put_result', refused ? { rc: -1, msg: refused } : { rc: 0, msg: 'success' })
      }
      case 'get': {
        const key = f.get('key')
        if (!key) return this.send('get_result', { rc: -1, msg: 'get needs key=' })
        const value = this.get(key)
        if (value === undefined) return this.send('get_result', { rc: -1, msg: `key_${key}_not_found` })
        return this.send('get_result', { rc: 0, msg: 'success', value })
      }
      case 'barrier_in':
        if (this.finalized) return this.send('barrier_out', { rc: -1, msg: 'barrier_in after finalize' })
        return this.barrier(() => this.send('barrier_out'))
      case 'finalize':
        this.finalized = true
        return this.send('finalize_ack')
      case 'abort':
        return this.abort(f.get('exitcode'))
      case 'publish_name':
      case 'unpublish_name':
      case 'lookup_name':
        // The HNP's name service (pmi-dpm.ts, src/hnp/dpm).
        return pmi1NameCommand(this, cmd, f)
      default:
        return this.send('error', { rc: -1, msg: `unknown PMI command ${cmd}` })
    }
  }

  private init(f: PmiFields): void {
    const version = f.get('pmi_version')
    if (this.inited) return this.send('response_to_init', { pmi_version: version ?? 1, pmi_subversion: 1, rc: -1, msg: 'a second init on this connection' })
    if (version !== '1' && version !== '2') return this.send('response_to_init', { pmi_version: 1, pmi_subversion: 1, rc: -1, msg: `unsupported pmi_version ${version ?? '(none)'}; this server speaks 1 and 2` })
    if (this.rank === null) return this.send('response_to_init', { pmi_version: version, pmi_subversion: 0, rc: -1, msg: 'init before initack' })
    this.inited = true
    if (version === '1') return this.send('response_to_init', { pmi_version: 1, pmi_subversion: 1, rc: 0 })
    this.send('response_to_init', { pmi_version: 2, pmi_subversion: 0, rc: 0 })
    this.framer.version = 2
  }

  /** Port mode: `cmd=initack pmiid=N`, answered with the rank's size, rank and debug flag. */
  private initack(f: PmiFields): void {
    if (this.rank !== null) return this.send('error', { rc: -1, msg: 'initack on a connection that already knows its rank' })
    const id = Number(f.get('pmiid'))
    const rank = Number.isInteger(id) ? this.claimId(id) : undefined
    if (rank === undefined) return this.fail('initack with a pmiid this node did not issue (or that is already in use)')
    this.rank = rank
    this.send('initack')
    this.send('set', { size: this.job.size })
    this.send('set', { rank })
    this.send('set', { debug: 0 })
  }

  /** Why a put is refused, or null. */
  putError(kvsname: string | undefined, key: string | undefined, value: string | undefined): string | null {
    if (this.finalized) return 'put after finalize'
    if (kvsname !== undefined && kvsname !== this.job.kvsname) return `unknown kvsname ${kvsname}`
    if (!key) return 'put needs key='
    if (value === undefined) return 'put needs value='
    if (Buffer.byteLength(key) > PMI_MAXES.key) return `the key is longer than keylen_max ${PMI_MAXES.key}`
    if (Buffer.byteLength(value) > PMI_MAXES.value) return `the value is longer than vallen_max ${PMI_MAXES.value}`
    return null
  }

  put(key: string, value: string): string | null {
    return this.job.fence.put(key, value)
  }

  get(key: string): string | undefined {
    if (key === 'PMI_process_mapping') return this.job.processMapping
    return this.job.fence.cache.get(key)
  }

  barrier(release: () => void): void {
    this.job.fence.enter(this.rank!, release)
  }

  abort(exitcode: string | undefined): void {
    const code = Number(exitcode ?? 1)
    this.aborted = true
    const rank = this.rank!
    const status = Number.isInteger(code) ? code & 0xff : 1
    this.job.report({ t: 'orted.abort', jobid: this.job.jobid, rank, code: status, message: `rank ${rank} called MPI_Abort (PMI abort) with exit code ${exitcode ?? '(none)'}` })
  }

  /** `mcmd=spawn` opened a spawn request: its next lines are the request's, up to its last `endcmd`. */
  private startSpawn(): void {
    this.spawnBlock = new SpawnBlock()
    this.spawnLine('mcmd=spawn')
  }

  /** Lines of `mcmd=spawn` up to its last `endcmd`; the whole request then goes to the HNP (pmi-dpm.ts). */
  private spawnLine(line: string): void {
    const parsed = this.spawnBlock!.line(line)
    if (!parsed) return
    this.spawnBlock = null
    pmi1Spawn(this, parsed)
  }
}

