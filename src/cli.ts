/**
 * The roles, each loaded only when asked for: a role's module (and whatever it imports) is a
 * chunk of its own in the binary, so `ompx version` never evaluates the launcher's code.
 */
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
