#!/usr/bin/env bash
# Installs what tabletd's tests need on a fresh Debian machine (run as root, or with sudo):
# MariaDB 10.11 server and client (real mariadbd processes are started by the tests), and curl.
# Go itself comes from the machine (go.mod names the version); etcd runs in-process.
set -euo pipefail
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
# make interop also checks our .proto files against Vitess's with protoc, and runs sysbench
# through vtgate.
if [ "${1:-}" = "--interop" ]; then
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts no service in containers; make sure a packaged mariadbd is not holding 3306 anyway.
echo "install-deps: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"
