/**
 * `PMI_process_mapping`: how MPICH learns which ranks share a node (shared memory between them,
 * the network to the others). The value is `(vector,(first_node,node_count,ranks_per_node),...)`:
 * each block gives `ranks_per_node` consecutive ranks to each of `node_count` nodes in turn,
 * starting at node index `first_node`; blocks follow one another in rank order. Node indices are
 * the order in which nodes first appear in rank order.
 */
export function processMapping(nodeOfRank: readonly string[]): string {
  const index = new Map<string, number>()
  // Runs of consecutive ranks on one node: [node index, ranks].
  const runs: [number, number][] = []
  for (const node of nodeOfRank) {
    if (!index.has(node)) index.set(node, index.size)
    const n = index.get(node)!
    const last = runs.at(-1)
    if (last && last[0] === n) last[1]++
    else runs.push([n, 1])
  }
  // Runs on successive nodes with the same length make one block.
  const blocks: [number, number, number][] = []
  for (const [node, count] of runs) {
    const b = blocks.at(-1)
    if (b && b[2] === count && b[0] + b[1] === node) b[1]++
    else blocks.push([node, 1, count])
  }
  return `(vector,${blocks.map((b) => `(${b.join(',')})`).join(',')})`
}
