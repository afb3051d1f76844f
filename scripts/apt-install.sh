#!/usr/bin/env bash
# Sourced by the test set-up scripts (setup-test-sshd.sh, setup-test-slurm.sh), which install
# their Debian packages on a bare CI machine the same way: as root only, quietly, `apt-get update`
# only when the current lists cannot install them, and without letting the packages start their
# system-wide services (a second sshd on port 22, the system's slurmctld/munged): a policy-rc.d
# refusing every start is in place for the install and removed after it, even on failure.
#
#   source scripts/apt-install.sh; install_packages PKG...    (the caller defines say)

install_packages() {
  if [ "$(id -u)" != 0 ]; then
    say "missing $* and not root; install them (apt-get install $*)"
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
  say "installed $*"
}
