/**
 * PMI-2 on a rank's connection, once its `cmd=init pmi_version=2` was answered: the commands
 * MPICH's and Slurm's PMI-2 clients send (fullinit, job-getid, kvs-put, kvs-fence, kvs-get,
 * info-getjobattr, info-getnodeattr, name-publish/-unpublish/-lookup, finalize, abort),
 * answered `cmd=<name>-response;rc=...;`.
 * The state (puts, fences, finalize) is the PMI-1 session's: one server, two encodings.
 */
import type { PmiFields } from './pmi-wire'
import type { PmiRank } from './pmi-job'
import { pmi2NameCommand } from './pmi-dpm'

export function pmi2Command(s: PmiRank, cmd: string, f: PmiFields): void {
  // A threaded client tags its commands; every response carries the tag back.
  const thrid = f.get('thrid')
  const reply = (fields: Record<string, string | number>) => s.send(`${cmd}-response`, thrid === undefined ? fields : { ...fields, thrid })
  const fail = (errmsg: string) => reply({ rc: -1, errmsg })
  const j = s.job
  const rank = s.rank!
  switch (cmd) {
    case 'fullinit': {
      const asked = f.get('pmirank')
      if (asked !== undefined && Number(asked) !== rank) return fail(`this connection belongs to rank ${rank}, not ${asked}`)
      return reply({ rc: 0, 'pmi-version': 2, 'pmi-subversion': 0, rank, size: j.size, appnum: j.appOf(rank), debugged: 'FALSE', pmiverbose: 'FALSE' })
    }
    case 'job-getid':
      return reply({ rc: 0, jobid: j.kvsname })
    case 'kvs-put': {
      const why = s.putError(undefined, f.get('key'), f.get('value'))
      if (why) return fail(why)
      const refused = s.put(f.get('key')!, f.get('value')!)
      return refused ? fail(refused) : reply({ rc: 0 })
    }
    case 'kvs-fence':
      if (s.finalized) return fail('kvs-fence after finalize')
      return s.barrier(() => reply({ rc: 0 }))
    case 'kvs-get': {
      const key = f.get('key')
      if (!key) return fail('kvs-get needs key=')
      const value = s.get(key)
      return value === undefined ? reply({ rc: 0, found: 'FALSE' }) : reply({ rc: 0, found: 'TRUE', value })
    }
    case 'info-getjobattr':
    case 'info-getnodeattr': {
      const key = f.get('key')
      const value = key === 'PMI_process_mapping' ? j.processMapping : undefined
      return value === undefined ? reply({ rc: 0, found: 'FALSE' }) : reply({ rc: 0, found: 'TRUE', value })
    }
    case 'name-publish':
    case 'name-unpublish':
    case 'name-lookup':
      // The HNP's name service (pmi-dpm.ts, src/hnp/dpm).
      return pmi2NameCommand(s, cmd, f, reply)
    case 'info-putnodeattr':
      return reply({ rc: 0 })
    case 'finalize':
      s.finalized = true
      return reply({ rc: 0 })
    case 'abort':
      return s.abort(f.get('exitcode') ?? '1')
    default:
      return s.send('error', { rc: -1, errmsg: `unknown PMI-2 command ${cmd}` })
  }
}
