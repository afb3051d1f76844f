/**
 * Per-rank tokens for the app-coordinator socket. The socket already sits in a 0700 directory;
 * the token also stops one rank from speaking for another (or a stale process of an earlier
 * run from joining), without handing ranks the job secret itself.
 */
export class RankTokens {
  private tokens = new Map<number, string>()

  /** A fresh token for `rank` (a restarted rank gets a new one; the old process is gone). */
  issue(rank: number): string {
    const bytes = crypto.getRandomValues(new Uint8Array(16))
    const token = Buffer.from(bytes).toString('hex')
    this.tokens.set(rank, token)
    return token
  }

  get(rank: number): string | undefined {
    return this.tokens.get(rank)
  }
}
