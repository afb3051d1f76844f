/**
 * The job model shared by the HNP, the daemons and the tools: what was asked for (app
 * contexts), where it may run (allocation), and where each rank landed (placements / procs).
 */

/** One program of a (possibly MPMD) job: `-np 2 ./a : -np 3 ./b` has two app contexts. */
export interface AppContext {
  index: number
  /** Undefined means "as many as the mapper gives" (one per slot, as mpirun does). */
  np?: number
  argv: string[]
  /** Extra variables for this app's ranks (-x and friends). */
  env: Record<string, string>
  cwd: string
}

export interface NodeInfo {
  name: string
  slots: number
  /** Hard cap even with oversubscription; undefined = no cap. */
  maxSlots?: number
  /** Address daemons bind to (simulated nodes get 127.0.1.N). */
  address?: string
  /** Launcher named for this node in the hostfile (`launcher=local`). */
  launcher?: string
  /** Whether slots was given explicitly (-H host:N, slots=N) or defaulted. */
  slotsGiven?: boolean
}

export interface Allocation {
  nodes: NodeInfo[]
  /** Where it came from, for messages: "-H", "hostfile <path>", "default (this host)". */
  source: string
  /**
   * Hosts in hostfile-line (or -H item) order, duplicates kept, each with how many ranks in a
   * row it takes (1 per hostfile line, N for -H host:N): the `seq` mapper puts rank i on the
   * i-th place of the expanded list. Run lengths, so a huge slot count costs no memory.
   * Undefined for the default allocation.
   */
  sequence?: SequenceRun[]
}

/** `count` consecutive places of the seq mapper's sequence on host `name`. */
export interface SequenceRun {
  name: string
  count: number
}

/** Result of mapping: rank -> node. Local/node ranks are derived by `assignLocalRanks`. */
export interface Placement {
  rank: number
  app: number
  node: string
}

export interface ProcInfo extends Placement {
  localRank: number
  localSize: number
  nodeRank: number
}

export type ProcState = 'init' | 'launched' | 'running' | 'exited' | 'failed' | 'killed'

/** Fill in OMPI_COMM_WORLD_LOCAL_RANK / LOCAL_SIZE / NODE_RANK for each placement. */
export function assignLocalRanks(placements: Placement[]): ProcInfo[] {
  const byNode = new Map<string, Placement[]>()
  for (const p of [...placements].sort((a, b) => a.rank - b.rank)) {
    const list = byNode.get(p.node) ?? []
    list.push(p)
    byNode.set(p.node, list)
  }
  const out: ProcInfo[] = []
  for (const list of byNode.values()) {
    list.forEach((p, i) => out.push({ ...p, localRank: i, localSize: list.length, nodeRank: i }))
  }
  return out.sort((a, b) => a.rank - b.rank)
}
