#!/usr/bin/env bash
# Makes a working criu available and prints ONE line on stdout: the command to run it.
#   CRIU=$(scripts/install-criu.sh) && "$CRIU" check
# Everything else goes to stderr. Exits non-zero, with the reason, when no working criu can be had.
#
# Tried in order, stopping at the first criu whose `criu check` passes:
#   1. $OMPX_CRIU if set, else a criu already on PATH.
#   2. Debian's own package (`apt-get install -y criu` when missing; skipped when that would
#      upgrade an installed package, or when OMPX_CRIU_NO_SYSTEM=1).
#   3. The criu of Debian's next release (trixie, OMPX_CRIU_SUITE to change), fetched with
#      `apt-get download` through a PRIVATE apt sources/lists/cache dir (never /etc/apt nor the
#      system's package state), extracted with `dpkg-deb -x` into <repo>/.cache/criu/root together
#      with that release's libc and every library in criu's Depends closure, and run through that
#      release's own dynamic loader: <repo>/.cache/criu/bin/criu is a small sh wrapper doing
#        exec <root>/.../ld-linux-x86-64.so.2 --library-path <libdirs> <root>/usr/sbin/criu "$@"
#      A second run with the cache present checks the wrapper and prints it, without apt.
# Why: Debian 12's criu 3.17 fails `criu check` on recent kernels (vDSO error); trixie's 4.1.1
# works but needs glibc >= 2.38, hence its own loader + libs instead of installing it. See docs/criu.md.
#
# Environment: OMPX_CRIU (a criu to try first), OMPX_CRIU_CACHE (default <repo>/.cache/criu),
# OMPX_CRIU_SUITE (default trixie), OMPX_CRIU_MIRROR (default: derived from the apt sources of
# this machine), OMPX_CRIU_NO_SYSTEM=1 (skip step 2), OMPX_CRIU_REFRESH=1 (re-fetch step 3).
set -euo pipefail

log() { echo "install-criu: $*" >&2; }
die() { echo "install-criu: error: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${OMPX_CRIU_CACHE:-$repo/.cache/criu}
suite=${OMPX_CRIU_SUITE:-trixie}
is_root=0
[ "$(id -u)" = 0 ] && is_root=1

# criu_ok CMD: true when `CMD check` says "Looks good". Logs the first error lines otherwise.
criu_ok() {
  local cmd=$1 out rc=0
  [ -x "$cmd" ] || return 1
  out=$(timeout 60 "$cmd" check 2>&1) || rc=$?
  if [ "$rc" = 0 ] && grep -q 'Looks good' <<<"$out"; then
    return 0
  fi
  log "$cmd check failed (exit $rc):"
  grep -m4 -iE 'error|fail|not found|need|denied' <<<"$out" | sed 's/^/    /' >&2 || true
  return 1
}

found() { # found CMD: print it as the answer and stop
  log "using $1"
  printf '%s\n' "$1"
  exit 0
}

not_root_hint() {
  [ "$is_root" = 1 ] || die "not root (uid $(id -u)): criu check/dump/restore and the install need root; rerun as root${1:+ ($1)}"
}

tried=""
# ---------------------------------------------------------------- 1. existing criu
if [ -n "${OMPX_CRIU:-}" ]; then
  c=$OMPX_CRIU
  case $c in */*) ;; *) c=$(command -v "$c" || true) ;; esac
  if [ -n "$c" ]; then
    tried="$tried $(readlink -f "$c")"
    criu_ok "$c" && found "$c"
  else
    log "OMPX_CRIU=$OMPX_CRIU not found"
  fi
fi
if c=$(command -v criu 2>/dev/null); then
  rc=$(readlink -f "$c")
  case " $tried " in *" $rc "*) ;; *) tried="$tried $rc"; criu_ok "$c" && found "$c" ;; esac
fi

# The cached wrapper of an earlier run (which exists only because steps 1-2 failed then) is checked
# before step 2, so that a second run does not touch apt.
wrapper=$cache/bin/criu
had_wrapper=0
# A cache made for another suite (OMPX_CRIU_SUITE changed) is rebuilt.
[ "$(cat "$cache/suite" 2>/dev/null)" = "$suite" ] || OMPX_CRIU_REFRESH=1
if [ -x "$wrapper" ] && [ "${OMPX_CRIU_REFRESH:-0}" != 1 ]; then
  had_wrapper=1
  criu_ok "$wrapper" && found "$wrapper"
fi

# ---------------------------------------------------------------- 2. Debian's own package
if [ "${OMPX_CRIU_NO_SYSTEM:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  if dpkg-query -W -f='${Status}' criu 2>/dev/null | grep -q 'install ok installed'; then
    for c in /usr/sbin/criu /usr/bin/criu; do
      [ -x "$c" ] || continue
      case " $tried " in *" $(readlink -f "$c") "*) continue ;; esac
      criu_ok "$c" && found "$c"
    done
    log "Debian's criu $(dpkg-query -W -f='${Version}' criu) is installed but does not pass criu check"
  elif [ "$is_root" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy criu 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      log "apt-get update (no criu candidate known)"
      apt-get update -qq >&2 || log "apt-get update failed"
    fi
    # Never upgrade an installed package: a simulated install listing "Inst pkg [oldversion]"
    # would replace something already there.
    sim=$(apt-get install -s -y --no-install-recommends criu 2>&1) || sim="FAILED $sim"
    if grep -q '^FAILED' <<<"$sim"; then
      log "Debian's criu cannot be installed: $(tail -n1 <<<"$sim")"
    elif grep -qE '^Inst [^ ]+ \[' <<<"$sim"; then
      log "skipping Debian's criu: installing it would upgrade: $(grep -E '^Inst [^ ]+ \[' <<<"$sim" | awk '{print $2}' | tr '\n' ' ')"
    else
      mkdir -p "$cache"
      log "apt-get install criu (Debian's package; output in $cache/apt-install.log)"
      if apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends criu >"$cache/apt-install.log" 2>&1; then
        for c in /usr/sbin/criu /usr/bin/criu; do
          [ -x "$c" ] && { criu_ok "$c" && found "$c"; break; }
        done
        log "Debian's criu $(dpkg-query -W -f='${Version}' criu 2>/dev/null) does not pass criu check; trying $suite's"
      else
        log "apt-get install criu failed:"; tail -n5 "$cache/apt-install.log" | sed 's/^/    /' >&2
      fi
    fi
  else
    log "not root: cannot apt-get install criu"
  fi
fi

# ---------------------------------------------------------------- 3. next release's criu, private
not_root_hint "no working criu found so far"
command -v dpkg-deb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
  || die "no working criu, and no apt-get/dpkg-deb to fetch $suite's (not a Debian-like system?)"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # another run may be filling the cache: wait for it, then use what it made
if [ "$had_wrapper" = 0 ] && [ -x "$wrapper" ] && [ "${OMPX_CRIU_REFRESH:-0}" != 1 ] && criu_ok "$wrapper"; then
  found "$wrapper"
fi

# The mirror: the URI of the apt source that serves this system's own release suite
# (one-line .list files and deb822 .sources files), with its Signed-By keyring.
codename=$( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [opt=val ...] URI SUITE COMPONENTS...
    awk -v want="$codename" '
      /^[ \t]*deb[ \t]/ {
        line = $0; sub(/^[ \t]*deb[ \t]+/, "", line); key = ""
        if (line ~ /^\[/) { opts = line; sub(/\].*/, "", opts); sub(/^[^]]*\][ \t]*/, "", line)
          if (match(opts, /signed-by=[^ \t\]]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10) }
        split(line, w, /[ \t]+/)
        if (w[2] == want) { print w[1] "\t" key; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^(no|false)$/ && (" " suites " ") ~ (" " want " ")) {
          split(uris, u, /[ \t]+/); print u[1] "\t" key; found = 1 }
        types = uris = suites = key = enabled = ""
      }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      /^#/ { next }
      /^[A-Za-z-]+:/ { k = tolower($0); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
        if (k == "types") types = v; else if (k == "uris") uris = v
        else if (k == "suites") suites = v; else if (k == "enabled") enabled = tolower(v)
        else if (k == "signed-by" && v ~ /^\//) key = v }
      END { if (!found) flush() }' "$f"
  done
}
mirror_line=""
if [ -n "$codename" ]; then
  mirror_line=$(find_mirror | head -n1)
fi
mirror=${OMPX_CRIU_MIRROR:-${mirror_line%%$'\t'*}}
keyring=""
[ -n "$mirror_line" ] && keyring=${mirror_line#*$'\t'}
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -n "$mirror" ] || die "no working criu, and no apt source for '$codename' in /etc/apt/sources.list* to derive a Debian mirror from (set OMPX_CRIU_MIRROR)"
mirror=${mirror%/}
log "fetching $suite's criu from $mirror (keyring $keyring) into $cache"

# A private apt: its own sources list, lists dir and cache; /etc/apt/apt.conf.d (proxy etc.) and
# the trusted keyrings still apply. Nothing here writes to /etc/apt, /var/lib/apt or /var/cache/apt.
papt=$cache/apt
mkdir -p "$papt/lists/partial" "$papt/cache/archives/partial" "$papt/debs" "$papt/preferences.d"
signed=""
[ -f "$keyring" ] && signed="[signed-by=$keyring] "
printf 'deb %s%s %s main\n' "$signed" "$mirror" "$suite" >"$papt/sources.list"
aopts=(-o "Dir::Etc::sourcelist=$papt/sources.list" -o "Dir::Etc::sourceparts=-"
       -o "Dir::State::Lists=$papt/lists" -o "Dir::Cache=$papt/cache"
       -o "Dir::Etc::preferences=$papt/preferences" -o "Dir::Etc::preferencesparts=$papt/preferences.d"
       -o "Acquire::Languages=none" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get "${aopts[@]}" -qq update >&2 || die "apt-get update of the private $suite list failed (mirror $mirror)"
ver=$(apt-cache "${aopts[@]}" show criu 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[ -n "$ver" ] || die "$suite has no criu package at $mirror"
# criu and the closure of its Depends/Pre-Depends (libc6 of $suite included: its loader + libc).
mapfile -t pkgs < <(apt-cache "${aopts[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances criu 2>/dev/null | grep -v '^[ <]' | sort -u)
printf '%s\n' "${pkgs[@]}" | grep -qx libc6 || pkgs+=(libc6)
log "criu $ver + ${#pkgs[@]} packages: ${pkgs[*]}"
rm -f "$papt/debs"/*.deb
(cd "$papt/debs" && apt-get "${aopts[@]}" -qq download "${pkgs[@]}" >&2) \
  || die "apt-get download from $suite failed"

# Extract into a fresh root, then swap it in.
new=$cache/root.new
rm -rf "$new"
mkdir -p "$new"
for d in "$papt/debs"/*.deb; do dpkg-deb -x "$d" "$new"; done
[ -x "$new/usr/sbin/criu" ] || die "extracted packages hold no usr/sbin/criu"

root=$cache/root
# The loader: a real file (not the usr/lib64 symlink) named ld-linux*.so.* next to libc.so.6.
ldso=$(find "$new" -name 'ld-linux*.so*' -type f 2>/dev/null | head -n1)
[ -n "$ldso" ] || die "no ld-linux*.so* in $suite's libc6"
ldso=${ldso#"$new"}
# Library dirs: every dir holding a lib*.so* (the multiarch dir, possibly lib/ of non-merged-usr).
libdirs=$(find "$new" \( -name 'lib*.so' -o -name 'lib*.so.*' \) \( -type f -o -type l \) -printf '%h\n' 2>/dev/null \
  | sort -u | grep -vE '/(gconv|compel|engines-[0-9]+|ossl-modules|pkcs11)(/|$)' | sed "s|^$new||")
libpath=$(for d in $libdirs; do printf '%s:' "$root$d"; done)
libpath=${libpath%:}

rm -rf "$root"
mv "$new" "$root"
mkdir -p "$cache/bin"
cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# criu $ver from Debian $suite, run by that release's own loader and libraries
# (written by scripts/install-criu.sh; see docs/criu.md).
exec "$root$ldso" --library-path "$libpath" "$root/usr/sbin/criu" "\$@"
EOF
chmod 755 "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
echo "$suite" >"$cache/suite"

# Anything the loader cannot resolve is a missing package in the Depends closure.
missing=$("$root$ldso" --library-path "$libpath" --list "$root/usr/sbin/criu" 2>&1 | grep 'not found' || true)
[ -z "$missing" ] || die "libraries not resolved for $suite's criu:"$'\n'"$missing"
criu_ok "$wrapper" || die "$suite's criu $ver (in $wrapper) does not pass criu check either; no working criu"
# Keep the .debs (provenance); drop the private package lists and caches (~40 MB).
rm -rf "$papt/lists" "$papt/cache"
found "$wrapper"
