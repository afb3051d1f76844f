/**
 * The HNP's answer to `ompx migrate` (`tool.migrate`): pick the job, refuse what cannot move
 * (a CRS that cannot checkpoint, a checkpoint or migration already running), plan the moves from
 * -r/-x/-t against the job's ranks and allocation (planMigration), run them through the job's
 * coordinator, stream its states when asked, and answer `hnp.migrate-done` or one `error` line.
 * The tool only checks syntax; every rule about ranks, nodes and slots is applied here, where the
 * job is known.
 */
import { ActionableError, errorMessage } from '../../errors'
import type { Channel } from '../../wire/channel'
import type { MessageOf } from '../../wire/messages'
import { planMigration } from '../mapping/migrate-targets'
import type { MigrationMove, MigrationResult } from './migrate-types'
import { pick, type Coordinators } from './tool-service'

const CRS_ADVICE = '--mca crs self or --mca crs criu'

/** The moves of a tool's request, or why there are none (one line for the user). */
function planOf(jobs: Coordinators, m: MessageOf<'tool.migrate'>) {
  const [jobid, coord] = pick(jobs, m.jobid)
  const view = coord.migrationView()
  if (view.notCheckpointable) {
    const why = view.notCheckpointable
    throw new ActionableError(`job ${jobid} cannot migrate: ${why}${why.includes('--mca crs') ? '' : ` (start it with ${CRS_ADVICE})`}`)
  }
  if (view.busy) throw new ActionableError(view.busy)
  const moves = planMigration(view, { ranks: m.ranks, off: m.off, onto: m.onto })
  const from = new Map(view.procs.map((p) => [p.rank, p.node]))
  return { jobid, coord, moves, from }
}

/** Null when every planned rank runs on its target, else what went wrong. */
export function missedTargets(moves: MigrationMove[], result: MigrationResult): string | null {
  for (const want of moves) {
    const got = result.moves.find((x) => x.rank === want.rank)
    if (!got) return `rank ${want.rank} was not moved to ${want.to}`
    if (got.to !== want.to) return `rank ${want.rank} runs on ${got.to}, not on its target ${want.to}`
  }
  return null
}

export function serveMigrateTools(jobs: Coordinators): (ch: Channel) => void {
  return (ch) => {
    ch.on('tool.migrate', (m) => {
      const fail = (err: unknown) => ch.send({ t: 'error', message: errorMessage(err) })
      try {
        const { jobid, coord, moves, from } = planOf(jobs, m)
        if (m.verbose) {
          for (const mv of moves) ch.send({ t: 'hnp.notice', jobid, text: `rank ${mv.rank}: ${from.get(mv.rank)} -> ${mv.to}` })
        }
        const progress = m.status || m.verbose ? (state: string, elapsed: number) => ch.send({ t: 'hnp.migrate-status', jobid, state, elapsed }) : undefined
        coord.migrate({ moves, hold: m.hold, keepImages: m.keepImages, origin: 'tool' }, progress).then((r) => {
          const missed = missedTargets(moves, r)
          if (missed) return fail(missed)
          ch.send({ t: 'hnp.migrate-done', jobid, moves: r.moves, bytes: r.bytes, totalMs: r.totalMs, timing: r.timing })
        }, fail)
      } catch (err) {
        fail(err)
      }
    })
  }
}
