/**
 * A private /proc and /dev/shm for each criu rank (issue #13): a rank has its own pid namespace,
 * so with the host's /proc `/proc/$$` names some other process, and names built from the pid
 * (shm_open("/x.<pid>"), Open MPI's /dev/shm/open_mpi.<...>) collide between ranks of a node and
 * between two restores of one snapshot. The rank therefore gets its own mount namespace whose
 * root is a copy of the host's mount tree, except for a procfs of its pid namespace and a tmpfs
 * on /dev/shm.
 *
 * How CRIU takes that (docs/criu.md, "Mount namespaces"; runc drives it alike):
 * - every fd and mapping of the tree must belong to a mount of the namespace: the set-up shell
 *   re-execs itself after pivot_root (its own /bin/sh mapping came from the host's mounts) and
 *   reopens a /dev/null stdin; Bun passes no other fd.
 * - the tree's mounts are bind mounts of host mounts except the procfs and the tmpfs: dump marks
 *   them external with `--external mnt[]` (criu finds their source in its own namespace), restore
 *   binds them back from the host with `--ext-mount-map auto` and needs a root for the namespace,
 *   `--root /`. The tmpfs is not external: criu saves its contents (tmpfs-dev-N.tar.gz.img) and
 *   restores them, so shm objects come back with the rank and two restores do not share them.
 * - the namespace is private (unshare --propagation private): nothing mounted there reaches the
 *   host, and criu's own mounts at restore are in the new namespace it creates.
 * - the rank also gets its own IPC namespace (unshare --ipc): criu refuses a SysV shared memory
 *   segment outside the dumped tree's IPC namespace ("SysVIPC shmem map ... doesn't live in IPC
 *   ns"; UCX, hence MPICH, makes them), and dumps and restores the namespace's segments with it.
 */
import { readlinkSync } from 'node:fs'

/** argv0 of the set-up shell, before it execs the tree root (launch.ts INIT_NAME). */
export const SETUP_NAME = 'ompx-criu-setup'

/** First words of the set-up failure the launch reports (the wrapper's last stderr line). */
const SETUP_FAILED = 'cannot give the rank a private /proc and /dev/shm'

/**
 * The set-up shell, run as `sh -c MOUNT_SETUP ompx-criu-setup INIT ARGV...` inside
 * `unshare --pid --fork --mount --propagation private`:
 * 1. lists the host's mount points (before anything is mounted), binds / on a fresh directory
 *    and each other mount point (once, the one visible at that path) under it, except /proc and
 *    /dev/shm and what is below them; mounts a procfs and a tmpfs on /dev/shm there;
 * 2. pivot_root's into it, drops the old root and removes the directory;
 * 3. goes back to the working directory (same path in the new root), reopens a stdin that is
 *    not a socket (Bun's /dev/null is the host's) and execs the root shell INIT with the
 *    program's argv.
 * Mount points are listed octal-escaped (\040 for a space); `printf %b` decodes them. `set -f`:
 * the list is split into words, never globbed.
 */
export const MOUNT_SETUP = `fail() { echo "ompx: ${SETUP_FAILED}: $1 (set crs_criu_private_mounts 0 to run without)" >&2; exit 126; }
set -f
init=$1; shift
here=$(pwd -P)
path0=$PATH; PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
points=$(cut -d' ' -f5 /proc/self/mountinfo) || fail "cannot read /proc/self/mountinfo"
r=$(mktemp -d "\${TMPDIR:-/tmp}/ompx-criu-ns.XXXXXX") || fail "mktemp failed"
mount --bind / "$r" || fail "mount --bind / $r failed"
seen=' '
for m in $points; do
  case "$m" in *\\\\*) m=$(printf '%b' "$m") ;; esac
  case "$m" in /|/proc|/proc/*|/dev/shm|/dev/shm/*) continue ;; esac
  case "$seen" in *" $m "*) continue ;; esac
  seen="$seen$m "
  [ -e "$r$m" ] || continue
  mount --bind "$m" "$r$m" || fail "mount --bind $m failed"
done
mount -t proc proc "$r/proc" || fail "mount -t proc failed"
mkdir -p "$r/dev/shm" && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm" || fail "mount -t tmpfs on /dev/shm failed"
cd "$r" && pivot_root . . && umount -l . || fail "pivot_root failed"
cd / && rmdir "$r" 2>/dev/null
cd "$here" || fail "cannot enter $here again"
[ -S /proc/self/fd/0 ] || exec </dev/null
PATH=$path0
exec sh -c "$init" ompx-criu-init "$@"`

/** Tools the set-up runs besides sh (util-linux: mount, umount, pivot_root; coreutils: cut, mktemp). */
export const MOUNT_TOOLS = ['mount', 'umount', 'pivot_root', 'cut', 'mktemp'] as const

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
