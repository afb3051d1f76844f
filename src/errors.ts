/**
 * An error meant for the user: its message is the whole advice, printed as one line
 * (no stack trace) before the process exits with `exitCode`.
 */
export class ActionableError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
    this.name = 'ActionableError'
  }
}

/** Errors raised inside a plugin carry the plugin's identity so the user knows whom to blame. */
export class PluginError extends Error {
  constructor(
    readonly kind: string,
    readonly plugin: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[${kind}:${plugin}] ${message}`, options)
    this.name = 'PluginError'
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
