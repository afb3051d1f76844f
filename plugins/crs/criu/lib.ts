/**
 * The CRIU layer of crs `criu`: find a working criu, start ranks so that they can be dumped,
 * dump them, restore them as handles the daemon treats like spawned ranks. See docs/criu.md.
 */
export { criuCandidates, criuCheck, criuVersion, findCriu, lookupCriu, type Candidate, type CriuBinary, type CriuCheck } from './binary'
export { DUMP_LOG, dumpTree, rootFds, type DumpInfo, type DumpRequest, type RootFd } from './dump'
export { assertPreDumpAvailable, inetSockets, lazyPages, nftablesLock, softDirty, type Feature } from './features'
export { criuLaunchArgv, INIT_NAME, launchToolsProblem, launchUnderCriu, STATUS_FD, treeRootOf, type CriuLaunchSpec } from './launch'
export { causeLine, CriuError, criuFailure } from './log'
export { DEFAULT_LOG_LEVEL, type CriuOptions } from './options'
export { CRIU_PARAMS, criuParams, type CriuParams } from './params'
export { privilegeProblem, privileges, type Privileges } from './privileges'
export { RESTORE_LOG, RESTORE_PIDFILE, restoreTree, type RestoreRequest } from './restore'
export { childrenOf, statusToExit, type CriuTree, type TreeExit } from './tree'
