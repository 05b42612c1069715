#!/usr/bin/env bash
# Installs, with apt-get, what this project's scripts need and a fresh Debian 12 machine
# lacks. Run as root (or a user with sudo). Without an option: what ./scripts/test.sh needs;
#   --demo     what ./scripts/demo.sh needs (no compiler, no make)
#   --interop  also protoc, sysbench and chromium (make interop, make bench; chromium renders
#              the /debug/status screenshot of TestStatusPageUnderSysbench)
#   --etcd     Debian's etcd server (scripts/vitess-local.sh etcd)
#   --image    debootstrap (make image builds its Debian base with it)
# Go itself is not installed here: it comes from the machine (see README, Quick start).
#
# Packaged servers are never left running: during apt-get install a policy-rc.d that answers
# 101 ("action forbidden") stops Debian's maintainer scripts from starting mariadb or etcd,
# and a service this run installed is disabled afterwards, so no system MariaDB listens on
# 3306 (nor etcd on 2379) unless one did before. The tests and the demo start their own
# mariadbd on other ports with their own data directories.
set -euo pipefail

profile=test
case "${1:-}" in
  "") ;;
  --demo) profile=demo ;;
  --interop) profile=interop ;;
  --image) profile=image ;;
  --etcd) profile=etcd ;;
  *) echo "install-deps: unknown option ${1} (want --demo, --interop, --etcd or --image)" >&2; exit 2 ;;
esac

need=()   # Debian packages to install
want() { need+=("$1"); }
# Go fetches modules over HTTPS and needs the CA bundle; curl waits for the demo's tablet.
[ -s /etc/ssl/certs/ca-certificates.crt ] || want ca-certificates
command -v curl >/dev/null 2>&1 || want curl
if [ "$profile" != etcd ] && [ "$profile" != image ]; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || want mariadb-server
  command -v mariadb >/dev/null 2>&1 || want mariadb-client
  command -v mariabackup >/dev/null 2>&1 || want mariadb-backup   # the backup engine (issue 8)
fi
if [ "$profile" = test ] || [ "$profile" = interop ]; then
  # go test -race needs cgo: a C compiler and the C library headers (gcc only recommends them).
  command -v make >/dev/null 2>&1 || want make
  command -v gcc >/dev/null 2>&1 || want gcc
  # test/systemd verifies deploy/systemd/tabletd.service with systemd-analyze (only installed,
  # never started: a container's init stays what it is).
  command -v systemd-analyze >/dev/null 2>&1 || want systemd
  [ -f /usr/include/stdlib.h ] || want libc6-dev
fi
if [ "$profile" = interop ]; then
  command -v protoc >/dev/null 2>&1 || want protobuf-compiler
  command -v sysbench >/dev/null 2>&1 || want sysbench
  command -v chromium >/dev/null 2>&1 || want chromium
fi
if [ "$profile" = image ]; then
  command -v debootstrap >/dev/null 2>&1 || want debootstrap
fi
if [ "$profile" = etcd ]; then
  command -v etcd >/dev/null 2>&1 || want etcd-server
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: nothing to install"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-deps: missing ${need[*]}; run this script as root, or install them: apt-get install ${need[*]}" >&2
    exit 1
  }
  sudo=sudo
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "install-deps: missing ${need[*]} and there is no apt-get: install their equivalents by hand" >&2
  exit 1
}

# No package's maintainer script may start its service while we install (policy-rc.d is
# read by invoke-rc.d and deb-systemd-invoke). An existing policy is put back afterwards.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved=$(mktemp); $sudo cp -p "$policy" "$saved"; fi
restore_policy() {
  if [ -n "$saved" ]; then $sudo mv "$saved" "$policy"; else $sudo rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# install-deps.sh: start no service while installing\nexit 101\n' | $sudo tee "$policy" >/dev/null
$sudo chmod 755 "$policy"

echo "install-deps: apt-get install ${need[*]}"
# apt's output goes to a log, shown only when it fails.
log=$(mktemp)
if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: apt-get install ${need[*]} failed (output above)" >&2
  exit 1
fi
rm -f "$log"

# A service this run installed stays off: never started (policy above) and not enabled.
for pkg in "${need[@]}"; do
  case "$pkg" in
    mariadb-server) svc=mariadb port=3306 ;;
    etcd-server) svc=etcd port=2379 ;;
    *) continue ;;
  esac
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif command -v update-rc.d >/dev/null 2>&1; then
    $sudo update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
  echo "install-deps: $pkg installed with its service '$svc' not started and disabled" \
    "(to run the packaged server: systemctl enable --now $svc)"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "install-deps: WARNING: something listens on 127.0.0.1:$port; this script did not start it" >&2
  fi
done
if [ "$profile" != etcd ] && [ "$profile" != image ]; then
  echo "install-deps: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"
fi
