#!/usr/bin/env bash
# Installs what the test suite needs beyond node + npm, idempotently (a second run does
# nothing). Called by `npm test` before the tests, so CI and a bare machine need no manual step.
# Today: a C compiler for the C fixtures, python3 for the unmodified-script CRIU test, and a
# working criu (scripts/install-criu.sh: .cache/criu). The ssh tests install and start their
# private sshd themselves (scripts/setup-test-sshd.sh), the Slurm tests their private cluster
# (scripts/setup-test-slurm.sh: slurm-wlm, munge). The PMI tests (test/e2e/pmi-mpich.test.ts) build
# MPI programs with MPICH's mpicc.mpich and a PMI-2 client with Slurm's libpmi2.
set -euo pipefail
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v mpicc.mpich >/dev/null 2>&1 || need+=(mpich libmpich-dev)
[ -e /usr/include/slurm/pmi2.h ] || need+=(libpmi2-0-dev)
# Open MPI's libmpi.so.40: the launch warning for programs whose MPI needs PMIx.
compgen -G '/usr/lib/*/libmpi.so.40' >/dev/null || need+=(openmpi-bin)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "install-test-deps: installed ${need[*]}"
fi
# criu for the crs criu tests (root only: criu needs it; the tests say why they cannot run otherwise).
if [ "$(id -u)" = 0 ]; then bash "$(dirname "$0")/install-criu.sh" >/dev/null; fi
