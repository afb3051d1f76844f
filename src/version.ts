import pkg from '../package.json' with { type: 'json' }

/** Baked in at compile time from package.json. */
export const VERSION: string = pkg.version
