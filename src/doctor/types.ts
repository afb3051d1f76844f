/** What `ompx doctor` reports: sections of checks, each with a verdict and a one-line detail. */

/** ok: works; warn: works with a limitation; fail: does not work here; info: for reference. */
export type Verdict = 'ok' | 'warn' | 'fail' | 'info'

export interface Check {
  /** Short name: a plugin name, "privileges", "criu check", ... */
  name: string
  verdict: Verdict
  /** One line: what was found, or why not and what to do. */
  detail: string
}

export interface Section {
  title: string
  checks: Check[]
}

export interface DoctorReport {
  ompx: string
  platform: string
  kernel: string
  sections: Section[]
}

export const check = (name: string, verdict: Verdict, detail: string): Check => ({ name, verdict, detail })
