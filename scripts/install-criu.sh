#!/usr/bin/env bash
# Makes a working criu available and prints ONE line on stdout: the command to run it.
#   CRIU=$(scripts/install-criu.sh) && "$CRIU" check
# Quiet on success: stderr gets a line only when something is fetched or installed, for a
# warning, or, on failure (exit 1), every candidate tried and why it was not used.
#
# A criu is "working" when `criu check` says "Looks good". On Linux >= 6.16 it must also be
# >= 4.2: older ones pass `criu check` but cannot dump any process holding a TCP/UDP socket
# there (docs/criu.md). Tried in order, stopping at the first working one:
#   1. $OMPX_CRIU if set, else a criu already on PATH.
#   2. The cached wrapper <repo>/.cache/criu/bin/criu of an earlier run of the same suite.
#   3. Debian's own package (`apt-get install -y criu` when missing and new enough; skipped when
#      that would upgrade an installed package, or when OMPX_CRIU_NO_SYSTEM=1).
#   4. The criu of another Debian suite, fetched with `apt-get download` through a PRIVATE apt
#      sources/lists/cache dir (never /etc/apt nor the system's package state), extracted with
#      `dpkg-deb -x` into <cache>/root with that suite's libc and every library in criu's Depends
#      closure, and run through that suite's own dynamic loader: <cache>/bin/criu is a small sh
#      wrapper doing  exec <root>/.../ld-linux-x86-64.so.2 --library-path <libdirs> <root>/usr/sbin/criu "$@"
#      Suite: sid (criu 4.2.x) on Linux >= 6.16, trixie (4.1.x, stable) before; if that one
#      fails, the other. OMPX_CRIU_SUITE=<suite> forces one suite.
#   5. A criu from steps 1-3 that passes `criu check` but is too old for inet sockets, with a
#      warning: better than none for programs without sockets.
# Why: Debian 12's criu 3.17 fails `criu check` on recent kernels (vDSO error); trixie's 4.1.1
# works but needs glibc >= 2.38, hence its own loader + libs instead of installing it.
#
# Environment: OMPX_CRIU (a criu to try first), OMPX_CRIU_CACHE (default <repo>/.cache/criu),
# OMPX_CRIU_SUITE (default: see step 4), OMPX_CRIU_MIRROR (default: derived from the apt sources
# of this machine), OMPX_CRIU_NO_SYSTEM=1 (skip step 3), OMPX_CRIU_REFRESH=1 (re-fetch step 4).
set -euo pipefail

log() { echo "install-criu: $*" >&2; }
die() {
  echo "install-criu: error: $*" >&2
  [ ${#notes[@]} -eq 0 ] || printf 'install-criu:   tried %s\n' "${notes[@]}" >&2
  exit 1
}
notes=()                 # every candidate that was not used, and why: printed only on failure
note() { notes+=("$*"); }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${OMPX_CRIU_CACHE:-$repo/.cache/criu}
is_root=0
[ "$(id -u)" = 0 ] && is_root=1

# ver_ge A B: version A >= B (dpkg-style strings; sort -V is good enough for criu's x.y.z).
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
kernel=$(uname -r)
new_kernel=0
ver_ge "${kernel%%-*}" 6.16 && new_kernel=1
# Suites to fetch from, in order (step 4).
if [ -n "${OMPX_CRIU_SUITE:-}" ]; then suites=("$OMPX_CRIU_SUITE")
elif [ "$new_kernel" = 1 ]; then suites=(sid trixie)
else suites=(trixie sid); fi

# criu_ok CMD: true when `CMD check` says "Looks good"; otherwise notes why.
criu_ok() {
  local cmd=$1 out rc=0
  [ -x "$cmd" ] || { note "$cmd: not found"; return 1; }
  out=$(timeout 60 "$cmd" check 2>&1) || rc=$?
  if [ "$rc" = 0 ] && grep -q 'Looks good' <<<"$out"; then return 0; fi
  # The first error that is not a helper's exit status ("exited, status=1") says why.
  note "$cmd: criu check failed (exit $rc): $(grep -iE 'error|fail|not found|need|denied' <<<"$out" | grep -vE 'exited, status=|RLIMIT_NOFILE' | head -n1 | sed 's/^([^)]*) //' || true)"
  return 1
}

criu_version() { "$1" --version 2>/dev/null | awk '/^Version:/ {print $2; exit}'; }

# adequate CMD: new enough for this kernel (>= 4.2 on Linux >= 6.16).
adequate() {
  [ "$new_kernel" = 0 ] && return 0
  local v; v=$(criu_version "$1")
  ver_ge "${v:-0}" 4.2 && return 0
  note "$1: criu ${v:-?} passes criu check but cannot dump TCP/UDP sockets on Linux $kernel (needs >= 4.2)"
  limited=${limited:-$1}
  return 1
}

found() { # found CMD: print it as the answer and stop
  printf '%s\n' "$1"
  exit 0
}

# consider CMD: use it if it works and is new enough.
consider() { criu_ok "$1" && adequate "$1" && found "$1"; return 0; }

limited=""               # a criu that passes check but is too old for inet sockets (step 5)
tried=""
# ---------------------------------------------------------------- 1. existing criu
if [ -n "${OMPX_CRIU:-}" ]; then
  c=$OMPX_CRIU
  case $c in */*) ;; *) c=$(command -v "$c" || true) ;; esac
  if [ -n "$c" ]; then
    tried="$tried $(readlink -f "$c")"
    consider "$c"
  else
    note "OMPX_CRIU=$OMPX_CRIU: not found"
  fi
fi
if c=$(command -v criu 2>/dev/null); then
  rc=$(readlink -f "$c")
  case " $tried " in *" $rc "*) ;; *) tried="$tried $rc"; consider "$c" ;; esac
fi

# ---------------------------------------------------------------- 2. the cache of an earlier run
# Checked before step 3 so that a second run is quick and does not touch apt. A cache of
# another suite than the first wanted one is refetched (OMPX_CRIU_SUITE changed, or an older
# default), unless fetching fails: then it is still used (step 4's fallback).
wrapper=$cache/bin/criu
cached_suite=$(cat "$cache/suite" 2>/dev/null || true)
use_cache() {
  [ -x "$wrapper" ] && [ "${OMPX_CRIU_REFRESH:-0}" != 1 ] && [ "$cached_suite" = "${suites[0]}" ] || return 0
  if [ -n "${OMPX_CRIU_SUITE:-}" ]; then
    # A suite the user chose is used even if too old for sockets here, with a warning.
    criu_ok "$wrapper" && { adequate "$wrapper" || warn_limited "$wrapper"; found "$wrapper"; }
  else
    consider "$wrapper"
  fi
  return 0
}
warn_limited() { log "warning: using $1 (criu $(criu_version "$1")): it cannot dump processes holding TCP/UDP sockets on Linux $kernel"; }
use_cache

# ---------------------------------------------------------------- 3. Debian's own package
debian_candidate() { apt-cache policy criu 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }
if [ "${OMPX_CRIU_NO_SYSTEM:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  if dpkg-query -W -f='${Status}' criu 2>/dev/null | grep -q 'install ok installed'; then
    for c in /usr/sbin/criu /usr/bin/criu; do
      [ -x "$c" ] || continue
      case " $tried " in *" $(readlink -f "$c") "*) continue ;; esac
      consider "$c"
    done
  elif [ "$is_root" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    cand=$(debian_candidate)
    if ! [[ $cand =~ ^[0-9] ]]; then
      apt-get update -qq >&2 || note "apt-get update failed"
      cand=$(debian_candidate)
    fi
    # Never upgrade an installed package: a simulated install listing "Inst pkg [oldversion]"
    # would replace something already there.
    sim=$(apt-get install -s -y --no-install-recommends criu 2>&1) || sim="FAILED $sim"
    if ! [[ $cand =~ ^[0-9] ]] || grep -q '^FAILED' <<<"$sim"; then
      note "Debian's criu: cannot be installed: $(tail -n1 <<<"$sim")"
    elif [ "$new_kernel" = 1 ] && ! ver_ge "${cand#*:}" 4.2; then
      note "Debian's criu $cand: too old for Linux $kernel (needs >= 4.2), not installed"
    elif grep -qE '^Inst [^ ]+ \[' <<<"$sim"; then
      note "Debian's criu: installing it would upgrade $(grep -E '^Inst [^ ]+ \[' <<<"$sim" | awk '{print $2}' | tr '\n' ' ')"
    else
      mkdir -p "$cache"
      log "apt-get install criu ($cand, Debian's package; output in $cache/apt-install.log)"
      if apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends criu >"$cache/apt-install.log" 2>&1; then
        for c in /usr/sbin/criu /usr/bin/criu; do
          [ -x "$c" ] && { consider "$c"; break; }
        done
      else
        note "Debian's criu: apt-get install failed: $(tail -n1 "$cache/apt-install.log")"
      fi
    fi
  else
    note "Debian's criu: not root, cannot apt-get install it"
  fi
fi

# ---------------------------------------------------------------- 4. another suite's criu, private
last_resort() { # step 5, or the failure report
  if [ -n "$limited" ]; then
    warn_limited "$limited"
    found "$limited"
  fi
  die "$1"
}
[ "$is_root" = 1 ] || last_resort "not root (uid $(id -u)): criu check/dump/restore and the install need root; rerun as root"
command -v dpkg-deb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
  || last_resort "no working criu, and no apt-get/dpkg-deb to fetch one (not a Debian-like system?)"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # another run may be filling the cache: wait for it, then use what it made
cached_suite=$(cat "$cache/suite" 2>/dev/null || true)
use_cache

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
[ -n "$codename" ] && mirror_line=$(find_mirror | head -n1)
mirror=${OMPX_CRIU_MIRROR:-${mirror_line%%$'\t'*}}
keyring=""
[ -n "$mirror_line" ] && keyring=${mirror_line#*$'\t'}
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -n "$mirror" ] || last_resort "no working criu, and no apt source for '$codename' in /etc/apt/sources.list* to derive a Debian mirror from (set OMPX_CRIU_MIRROR)"
mirror=${mirror%/}

# A private apt: its own sources list, lists dir and cache; /etc/apt/apt.conf.d (proxy etc.) and
# the trusted keyrings still apply. Nothing here writes to /etc/apt, /var/lib/apt or /var/cache/apt.
# An empty dpkg status: what is installed on this system (Debian 12's criu 3.17, say) must not
# be mistaken for the suite's package.
papt=$cache/apt
aopts=(-o "Dir::Etc::sourcelist=$papt/sources.list" -o "Dir::Etc::sourceparts=-"
       -o "Dir::State::Lists=$papt/lists" -o "Dir::Cache=$papt/cache"
       -o "Dir::Etc::preferences=$papt/preferences" -o "Dir::Etc::preferencesparts=$papt/preferences.d"
       -o "Dir::State::status=$papt/status"
       -o "Acquire::Languages=none" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")

# fetch SUITE: download SUITE's criu and its Depends closure, extract it next to the current
# cache, check it, and only then swap it in and (re)write the wrapper. Notes why on failure,
# leaving an existing cache as it was.
fetch() {
  local suite=$1 ver new=$cache/root.new root=$cache/root ldso libdirs libpath d out rc
  local -a pkgs
  mkdir -p "$papt/lists/partial" "$papt/cache/archives/partial" "$papt/debs" "$papt/preferences.d"
  : >"$papt/status"
  local signed=""
  [ -f "$keyring" ] && signed="[signed-by=$keyring] "
  printf 'deb %s%s %s main\n' "$signed" "$mirror" "$suite" >"$papt/sources.list"
  # apt-get update may exit 0 on a mirror it could not reach: the list file is what counts.
  out=$(apt-get "${aopts[@]}" -qq update 2>&1) || true
  if ! compgen -G "$papt/lists/*_Packages*" >/dev/null; then
    note "$suite: could not fetch its package list from $mirror: $(grep -m1 -E '^(E|W|Err):' <<<"$out" || tail -n1 <<<"$out")"; return 1
  fi
  ver=$(apt-cache "${aopts[@]}" show criu 2>/dev/null | awk '/^Version:/ {print $2; exit}')
  [ -n "$ver" ] || { note "$suite: no criu package at $mirror"; return 1; }
  # criu and the closure of its Depends/Pre-Depends (the suite's libc6 included: loader + libc).
  mapfile -t pkgs < <(apt-cache "${aopts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances criu 2>/dev/null | grep -v '^[ <]' | sort -u)
  printf '%s\n' "${pkgs[@]}" | grep -qx libc6 || pkgs+=(libc6)
  log "fetching $suite's criu $ver and ${#pkgs[@]} packages from $mirror into $cache"
  rm -f "$papt/debs"/*.deb
  if ! out=$(cd "$papt/debs" && apt-get "${aopts[@]}" -qq download "${pkgs[@]}" 2>&1); then
    note "$suite: apt-get download failed: $(tail -n1 <<<"$out")"; return 1
  fi
  rm -rf "$new"
  mkdir -p "$new"
  for d in "$papt/debs"/*.deb; do dpkg-deb -x "$d" "$new"; done
  [ -x "$new/usr/sbin/criu" ] || { note "$suite: the packages hold no usr/sbin/criu"; return 1; }
  # The loader: a real file (not the usr/lib64 symlink) named ld-linux*.so.* next to libc.so.6.
  ldso=$(find "$new" -name 'ld-linux*.so*' -type f 2>/dev/null | head -n1)
  [ -n "$ldso" ] || { note "$suite: no ld-linux*.so* in its libc6"; return 1; }
  ldso=${ldso#"$new"}
  # Library dirs: every dir holding a lib*.so* (the multiarch dir, possibly lib/ of non-merged-usr).
  libdirs=$(find "$new" \( -name 'lib*.so' -o -name 'lib*.so.*' \) \( -type f -o -type l \) -printf '%h\n' 2>/dev/null \
    | sort -u | grep -vE '/(gconv|compel|engines-[0-9]+|ossl-modules|pkcs11)(/|$)' | sed "s|^$new||")
  # Check it where it was extracted, before it replaces anything: libraries resolved, criu check.
  libpath=$(for d in $libdirs; do printf '%s:' "$new$d"; done)
  if out=$("$new$ldso" --library-path "${libpath%:}" --list "$new/usr/sbin/criu" 2>&1 | grep 'not found'); then
    note "$suite: libraries not resolved for criu $ver: $out"; return 1
  fi
  rc=0
  out=$(timeout 60 "$new$ldso" --library-path "${libpath%:}" "$new/usr/sbin/criu" check 2>&1) || rc=$?
  if [ "$rc" != 0 ] || ! grep -q 'Looks good' <<<"$out"; then
    note "$suite: criu $ver fails criu check (exit $rc): $(grep -m1 -iE 'error|fail' <<<"$out" | sed 's/^([^)]*) //' || true)"
    return 1
  fi
  libpath=$(for d in $libdirs; do printf '%s:' "$root$d"; done)
  rm -rf "$root"
  mv "$new" "$root"
  mkdir -p "$cache/bin"
  cat >"$wrapper.tmp" <<WRAPPER
#!/bin/sh
# criu $ver from Debian $suite, run by that release's own loader and libraries
# (written by scripts/install-criu.sh; see docs/criu.md).
exec "$root$ldso" --library-path "${libpath%:}" "$root/usr/sbin/criu" "\$@"
WRAPPER
  chmod 755 "$wrapper.tmp"
  mv "$wrapper.tmp" "$wrapper"
  echo "$suite" >"$cache/suite"
  # Keep the .debs (provenance); drop the private package lists and caches (~40 MB).
  rm -rf "$papt/lists" "$papt/cache"
  return 0
}

for suite in "${suites[@]}"; do
  if fetch "$suite" && criu_ok "$wrapper"; then
    [ "$suite" = "${suites[0]}" ] || log "note: using $suite's criu ($(criu_version "$wrapper")): ${suites[0]}'s did not work"
    adequate "$wrapper" && found "$wrapper"
    # The suite the user asked for: used with a warning.
    [ -n "${OMPX_CRIU_SUITE:-}" ] && { warn_limited "$wrapper"; found "$wrapper"; }
  fi
done
rm -rf "$cache/root.new" "$papt/lists" "$papt/cache"
# A cache from an earlier run of another suite is better than nothing.
[ -x "$wrapper" ] && criu_ok "$wrapper" && { adequate "$wrapper" && found "$wrapper"; }
last_resort "no working criu could be found or fetched"
