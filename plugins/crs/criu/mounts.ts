/**
 * A private /proc and /dev/shm for each criu rank (issue #13): a rank has its own pid namespace,
 * so with the host's /proc `/proc/$$` names some other process, and names built from the pid
 * (shm_open("/x.<pid>"), Open MPI's /dev/shm/open_mpi.<...>) collide between ranks of a node and
 * between two restores of one snapshot. The rank therefore gets its own mount namespace: the copy
 * of the host's that `unshare --mount` makes, with a procfs of its pid namespace on /proc and a
 * tmpfs on /dev/shm.
 *
 * The set-up is three processes (`umount`, `mount`, `mount`) run by the root shell itself before
 * it starts the program: a launch costs a few ms more than without the namespace. (Until
 * 2026-12-04 it was a copy of each visible host mount point under a fresh directory entered with
 * pivot_root: ~22 processes, +360 ms per rank on a loaded machine; docs/benchmarks.md.)
 *
 * How CRIU takes that (docs/criu.md, "Mount namespaces"; checked with criu 4.2.1):
 * - every fd and mapping of the tree must belong to a mount of the namespace: the root shell is
 *   exec'd after unshare (so its /bin/sh mapping is the namespace's copy) and reopens a /dev/null
 *   stdin (Bun's is the host's); Bun passes no other fd. unshare moves cwd and root to the copy.
 * - the namespace's mounts are copies of host mounts (the root one included, and mounts hidden
 *   under others: the host's stacked /dev/shm and /dev/pts, the host's /dev/shm under the rank's
 *   tmpfs) except the procfs and the tmpfs: dump marks them external with `--external mnt[]`
 *   (criu finds each one's source in its own namespace), restore binds them back from the host
 *   with `--ext-mount-map auto` and needs a root for the namespace, `--root /`. The tmpfs is not
 *   external: criu saves its contents (tmpfs-dev-N.tar.gz.img) and restores them, so shm objects
 *   come back with the rank and two restores do not share them. The host's /proc is unmounted
 *   (lazily, with what is below it, e.g. binfmt_misc, which may be an autofs) rather than hidden
 *   under the new one: /proc/* of the host stays out of the dump.
 * - the namespace is private (unshare --propagation private): nothing mounted there reaches the
 *   host, and criu's own mounts at restore are in the new namespace it creates.
 * - the rank also gets its own IPC namespace (unshare --ipc): criu refuses a SysV shared memory
 *   segment outside the dumped tree's IPC namespace ("SysVIPC shmem map ... doesn't live in IPC
 *   ns"; UCX, hence MPICH, makes them), and dumps and restores the namespace's segments with it.
 */
import { readlinkSync } from 'node:fs'

/** First words of the set-up failure the launch reports (the wrapper's last stderr line). */
const SETUP_FAILED = 'cannot give the rank a private /proc and /dev/shm'

/**
 * The first lines of the root shell (launch.ts initScript) of a rank with private mounts, run in
 * the namespaces unshare made, before anything else (its stderr is still the wrapper's): a procfs
 * of the pid namespace on /proc in place of the host's (if that cannot be unmounted, the mount
 * over it still hides it), a tmpfs on /dev/shm over the host's (the directory made if the host
 * has none, as the layout before did), and a stdin that is not a socket reopened in the
 * namespace. mount and umount are looked up in the sbin directories too; the program gets the
 * PATH it was given.
 */
export const MOUNT_SETUP = `fail() { echo "ompx: ${SETUP_FAILED}: $1 (set crs_criu_private_mounts 0 to run without)" >&2; exit 126; }
path0=$PATH; PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
umount -l /proc 2>/dev/null
mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount -t proc failed"
{ [ -d /dev/shm ] || mkdir -p /dev/shm; } && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount -t tmpfs on /dev/shm failed"
PATH=$path0
[ -S /proc/self/fd/0 ] || exec </dev/null`

/** Tools the set-up runs besides sh (util-linux). */
export const MOUNT_TOOLS = ['mount', 'umount'] as const

/** Is `pid` in a mount namespace other than ours (a rank with private mounts)? */
export function ownMountNs(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt')
  } catch {
    return false
  }
}

/**
 * criu dump arguments for a tree in its own mount namespace: the host's mounts are external, and
 * shm objects the rank unlinked but still maps (UCX's /dev/shm/ucx_shm_posix_*, 4 MiB each) are
 * saved as ghost files up to 256 MiB each instead of failing the dump at criu's 1 MiB default
 * ("Can't dump ghost file ... increase limit"). A later --ghost-limit in crs_criu_extra_args wins.
 */
export const DUMP_MOUNT_ARGS = ['--external', 'mnt[]', '--ghost-limit', '256M'] as const

/** criu restore arguments for it: external mounts from the host, the host's / as the root. */
export const RESTORE_MOUNT_ARGS = ['--ext-mount-map', 'auto', '--root', '/'] as const
