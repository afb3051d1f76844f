/** The root command: metadata, global setup and the lazy list of roles. No `run` here (citty rule). */
import { defineCommand } from 'citty'
import { VERSION } from './version'

export const subCommands = {
  run: () => import('./commands/run').then((m) => m.default),
  plugins: () => import('./commands/plugins').then((m) => m.default),
  info: () => import('./commands/info').then((m) => m.default),
  version: () => import('./commands/version').then((m) => m.default),
  orted: () => import('./commands/orted').then((m) => m.default),
  ps: () => import('./commands/ps').then((m) => m.default),
  hnp: () => import('./commands/hnp').then((m) => m.default),
  shim: () => import('./commands/shim').then((m) => m.default),
  checkpoint: () => import('./commands/checkpoint').then((m) => m.default),
  restart: () => import('./commands/restart').then((m) => m.default),
  migrate: () => import('./commands/migrate').then((m) => m.default),
  doctor: () => import('./commands/doctor').then((m) => m.default),
}

export default defineCommand({
  meta: {
    name: 'ompx',
    version: VERSION,
    description: 'Parallel job runtime with checkpoint, restart and migration',
  },
  setup() {
    // Ranks and child roles must never inherit a half-configured terminal state from us.
    process.title = 'ompx'
  },
  subCommands,
})
