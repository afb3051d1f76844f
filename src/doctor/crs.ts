/**
 * The CRS section of `ompx doctor`: each checkpoint/restart plugin and whether jobs using it can
 * be checkpointed on this node. Registered plugins answer through notCheckpointable(); crs
 * criu is judged from the criu section as well, so the answer is there even in a build that
 * does not include the plugin yet.
 */
import type { Registry } from '../plugins/registry'
import { criuVerdict } from './criu'
import { check, type Check, type Section } from './types'

const NOTES: Record<string, string> = {
  none: 'no checkpointing (the default when no CRS is asked for)',
  self: 'the application saves its own state (ompx/app SDK or ompx shim)',
  criu: 'transparent checkpoint/restart of unmodified programs',
}

export function crsSection(registry: Registry, criu: Section): Section {
  const checks: Check[] = []
  const criuWhy = criuVerdict(criu)
  for (const e of registry.list('crs')) {
    let why: string | null
    try {
      why = e.plugin.notCheckpointable()
    } catch (err) {
      why = (err as Error).message
    }
    if (e.name === 'none') checks.push(check('none', 'info', NOTES.none!))
    else if (e.name === 'criu') checks.push(criuCheck(criuWhy ?? why))
    else checks.push(why ? check(e.name, 'fail', why) : check(e.name, 'ok', NOTES[e.name] ?? e.description))
  }
  if (!registry.get('crs', 'criu')) {
    const c = criuCheck(criuWhy)
    checks.push({ ...c, detail: `${c.detail} (this build does not include the plugin yet)` })
  }
  return { title: 'checkpoint/restart (crs plugins)', checks }
}

function criuCheck(why: string | null): Check {
  return why ? check('criu', 'fail', why) : check('criu', 'ok', NOTES.criu!)
}
