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
  // JavaScriptCore's tier-up thresholds x10 (Bun.unsafe.setJITPolicy): start-up code, run once,
  // stays in the interpreter instead of waking the optimizing JIT, whose code pages and
  // compilations cost `ompx run -np 64` ~5 MB of peak RSS (49.7 -> 44.7 MB). Hot loops of a
  // long-lived daemon still get compiled, after ten times as many runs.
  '--compile-jit-policy=10',
  '--minify-syntax',
  '--minify-whitespace',
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
] as const
