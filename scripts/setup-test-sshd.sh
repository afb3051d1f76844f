#!/usr/bin/env bash
# A private sshd for the ssh launcher's tests: listens ONLY on loopback (127.0.0.1 and
# 127.0.1.1-127.0.1.4, the simulated nodes), port 2222 (OMPX_TEST_SSHD_PORT), key login only.
# Idempotent: installs openssh-server/-client if missing, creates keys and config once, starts
# sshd unless its pid file names a live sshd, then checks that `ssh 127.0.1.2 true` works.
#
#   scripts/setup-test-sshd.sh          # set up / start; prints the ssh command to use
#   scripts/setup-test-sshd.sh --stop   # stop it (keys and config stay for the next run)
#
# Everything lives in .cache/test-sshd/ of the repo (OMPX_TEST_SSHD_DIR), which git ignores.
# Use it as:  ssh -F .cache/test-sshd/ssh_config 127.0.1.2 <command>
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${OMPX_TEST_SSHD_DIR:-$repo/.cache/test-sshd}"
port="${OMPX_TEST_SSHD_PORT:-2222}"
addrs=(127.0.0.1 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4)
say() { echo "setup-test-sshd: $*" >&2; }

running_pid() {
  local pid
  pid="$(cat "$dir/sshd.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && echo "$pid"
}

mkdir -p "$dir"
chmod 700 "$dir"
# Tests may call this concurrently: one at a time.
exec 9>"$dir/.lock"
flock 9

if [ "${1:-}" = "--stop" ]; then
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 50); do running_pid >/dev/null || break; sleep 0.1; done
    say "stopped sshd $pid"
  else
    say "not running"
  fi
  rm -f "$dir/sshd.pid"
  exit 0
fi

# 1. Packages. `apt-get update` only when the package is not installable from the current lists.
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  # shellcheck source=apt-install.sh
  source "$repo/scripts/apt-install.sh"
  install_packages "${need[@]}"
fi

# 2. Keys: host key, and a client key pair whose public half is the only authorized key.
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C ompx-test-host -f "$dir/host_ed25519"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C ompx-test-client -f "$dir/id_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys" "$dir/host_ed25519" "$dir/id_ed25519"

# 3. Configs (rewritten every time, so edits here take effect on the next start).
{
  for a in "${addrs[@]}"; do echo "ListenAddress $a:$port"; done
  cat <<EOF
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# The keys live in the repo, whose parent directories we do not control the modes of.
StrictModes no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
# Many simulated nodes connect at once in tests.
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
EOF
} >"$dir/sshd_config"
cat >"$dir/ssh_config" <<EOF
Host *
  Port $port
  User $(id -un)
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
EOF

# 4. Start sshd unless it is already up.
if pid="$(running_pid)"; then
  say "sshd already running (pid $pid)"
else
  # Privilege separation needs this directory (Debian's init script would create it).
  [ "$(id -u)" != 0 ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; }
  /usr/sbin/sshd -t -f "$dir/sshd_config"
  # A clean environment: sshd daemonizes and must not carry the caller's variables (test markers).
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" 9>&-
  for _ in $(seq 50); do running_pid >/dev/null && break; sleep 0.1; done
  pid="$(running_pid)" || { say "sshd did not start; see $dir/sshd.log"; tail -5 "$dir/sshd.log" >&2 || true; exit 1; }
  say "started sshd (pid $pid) on ${addrs[*]} port $port"
fi

# 5. Check that a login works, as the tests will do it.
if ! out="$(ssh -F "$dir/ssh_config" 127.0.1.2 echo ok 2>&1)" || [ "$out" != ok ]; then
  say "ssh -F $dir/ssh_config 127.0.1.2 does not work: $out"
  exit 1
fi
echo "ssh -F $dir/ssh_config"
