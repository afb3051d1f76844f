#!/usr/bin/env bash
# Install the peer MPI runtimes and tools that ompx's tests and benchmarks compare against, from
# Debian's packages, when they are missing:
#
#   mpich libmpich-dev   mpicc, mpiexec.hydra  (MPICH: PMI-wire compatibility tests, launch bench)
#   libpmi2-0-dev        Slurm's PMI-2 client   (the PMI-2 test's client)
#   openmpi-bin          mpirun / orterun      (Open MPI: launch bench)
#   time                 /usr/bin/time         (GNU time: peak RSS via wait4 in scripts/bench)
#
# Usage: scripts/install-peers.sh [--strict]
#
# Idempotent: packages already installed are not touched, `apt-get update` runs only when
# something is missing, and then once. Non-interactive (CI runs it as root on a bare Debian 12).
# Quiet unless something is installed (one line each) or fails (the tail of apt's log).
#
# Exit status, by judgement:
#   0  everything present, or some peer could not be installed. Every peer is optional: tests
#      that need one skip, the benchmark prints "n/a" for its column. A warning line says which.
#      Also 0 when there is no apt-get or no root (not a Debian CI machine; nothing we can do).
#   2  apt itself is broken: `apt-get update` fails, or dpkg is interrupted / its lock cannot be
#      had within 5 minutes. That is a machine problem CI should surface, not hide.
#   With --strict any package that could not be installed also exits 2.
set -u -o pipefail

# INSTALL_PEERS_PACKAGES overrides the list (used to test this script itself).
read -ra PACKAGES <<<"${INSTALL_PEERS_PACKAGES:-mpich libmpich-dev libpmi2-0-dev openmpi-bin time}"
strict=0
[[ "${1:-}" == "--strict" ]] && strict=1

warn() { echo "install-peers: $*" >&2; }

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  warn "no apt-get/dpkg here: not installing ${PACKAGES[*]} (peers will be reported missing)"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
((${#missing[@]} == 0)) && exit 0

# Root, or passwordless sudo; anything that would prompt is not an option in CI.
SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    warn "not root and no passwordless sudo: cannot install ${missing[*]}"
    ((strict)) && exit 2
    exit 0
  fi
fi

log=$(mktemp /tmp/install-peers.XXXXXX.log)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended-upgrades, a parallel install) instead of failing.
APT=("${SUDO[@]}" apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)

fail_apt() {
  warn "$1"
  tail -n 15 "$log" | sed 's/^/  | /' >&2
  exit 2
}

"${APT[@]}" update >"$log" 2>&1 || fail_apt "apt-get update failed: apt is broken here"
# Stale apt lists still "succeed"; a warning line about a failed fetch means no network to Debian.
grep -qE '^(W|E): Failed to fetch' "$log" && warn "apt-get update could not fetch everything; trying anyway"

failed=()
# One package at a time: a name unknown on this release must not block the others.
for p in "${missing[@]}"; do
  if "${APT[@]}" install "$p" >"$log" 2>&1; then
    echo "install-peers: installed $p"
  else
    # dpkg in a half-configured state or a lock we never got: the machine is broken, not the package.
    grep -qE 'dpkg was interrupted|Could not get lock|Unable to acquire the dpkg' "$log" &&
      fail_apt "apt/dpkg is unusable while installing $p"
    warn "could not install $p (optional; its tests skip and its bench column shows n/a)"
    tail -n 5 "$log" | sed 's/^/  | /' >&2
    failed+=("$p")
  fi
done

((${#failed[@]} > 0 && strict)) && exit 2
exit 0
