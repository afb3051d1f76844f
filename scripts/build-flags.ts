/**
 * The `bun build --compile` flags of dist/ompx, shared by scripts/build.ts and the start-up
 * benchmark (scripts/bench/startup.ts), whose floor is a hello world compiled the same way.
 * .env and bunfig.toml autoload are off so a user's working directory can never change how the
 * runtime behaves.
 */
export const COMPILE_FLAGS = [
  '--compile',
  // --bytecode (ESM) halves start-up time, which every launch and every daemon pays.
  '--bytecode',
  // One chunk per role (and per shared group of modules): a role parses and evaluates only the
  // code it imports. `ompx version` went from 2x to ~1.05x a compiled hello world (issue #16).
  '--splitting',
  '--format=esm',
  '--minify-syntax',
  '--minify-whitespace',
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
] as const
