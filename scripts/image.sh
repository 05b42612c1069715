#!/usr/bin/env bash
# Builds the container images, from local material only (no registry is reached):
#   tabletd:<version>          FROM scratch: the static tabletd and tabletctl, user 65532,
#                              health check /healthz + /debug/health (tabletctl probe)
#   tabletd-mariadb:<version>  Debian 12's MariaDB 10.11 (server, client, mariadb-backup)
#                              with the entry point the compose cluster and the tests use,
#                              and tabletd beside it for all-in-one tablets (backups, restores)
#   tabletd-vitess:<vitess>    Debian's etcd and Vitess v23's vtctld, vtgate, vtctldclient
#                              (from scripts/build-vitess.sh, debug info stripped)
# The Debian base, tabletd-debian:bookworm, is made once by debootstrap (docs/fresh-machine.md's
# recipe, rootfs in $ROOTFS) and `docker import`ed without apt's caches; it is reused when present.
# <version> is `git describe --always --dirty`; each image is also tagged :latest.
#
#   scripts/image.sh          build what is missing or changed (docker's cache makes a rebuild
#                             of unchanged inputs take seconds)
#   scripts/image.sh version  print the version tag
#   scripts/image.sh sizes    print the images and their sizes
#
# The tabletd binary is reproducible: CGO_ENABLED=0 -trimpath, the version from git, so the
# same commit built twice gives the same bytes (and the same image layer).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$here"
VITESS_BIN=${VITESS_BIN:-/opt/vitess-v23/bin}
ROOTFS=${ROOTFS:-/tmp/bookworm-rootfs}
BASE=tabletd-debian:bookworm
VITESS_TAG=v23.0.0
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() { echo "image: $*" >&2; exit 1; }

version() { git -C "$here" describe --always --dirty 2>/dev/null || echo dev; }

# offline explains a failed download: is Debian's mirror reachable at all?
offline_hint() {
  local host=${MIRROR#*://}; host=${host%%/*}
  if ! timeout 10 bash -c "exec 3<>/dev/tcp/$host/80" 2>/dev/null; then
    echo "image: $host:80 (Debian's mirror) cannot be reached: this step downloads Debian packages." \
      "Connect this machine to the network (or set DEBIAN_MIRROR to a reachable mirror) and run it again;" \
      "images already built are kept and reused." >&2
  fi
}

check_docker() {
  command -v docker >/dev/null 2>&1 ||
    die "no docker command: install Docker Engine (apt-get install docker.io) and start it (service docker start)"
  docker info >/dev/null 2>&1 ||
    die "the Docker daemon is not running or not reachable ($(docker info 2>&1 | grep -m1 -i error || echo 'docker info failed')): start it (systemctl start docker, or service docker start) and check that this user may use it (root, or the docker group)"
}

base_image() {
  if docker image inspect "$BASE" >/dev/null 2>&1; then return; fi
  if [ ! -x "$ROOTFS/bin/sh" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
      # As the test command installs what it needs: root with apt-get gets debootstrap here.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        "$here/scripts/install-deps.sh" --image ||
          die "installing debootstrap failed: apt-get install debootstrap (or docker load an image named $BASE made elsewhere)"
      else
        die "the Debian base image $BASE is missing and building it needs debootstrap: apt-get install debootstrap as root (or docker load an image named $BASE made elsewhere)"
      fi
    fi
    echo "image: debootstrap --variant=minbase bookworm $ROOTFS (about a minute)"
    local log; log=$(mktemp)
    if ! debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$log" 2>&1; then
      tail -5 "$log" >&2; offline_hint; rm -rf "$ROOTFS"
      die "debootstrap failed (log: $log)"
    fi
    rm -f "$log"
  fi
  echo "image: docker import $ROOTFS as $BASE (without apt's caches, docs, man pages, locales)"
  # Later apt-get installs in the images leave docs out too (a file added to the archive;
  # the rootfs itself is left as debootstrap made it).
  local extra; extra=$(mktemp -d)
  mkdir -p "$extra/etc/dpkg/dpkg.cfg.d"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-exclude /usr/share/info/*\n' \
    >"$extra/etc/dpkg/dpkg.cfg.d/tabletd-slim"
  tar --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
    --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' \
    --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
    -C "$ROOTFS" -c . -C "$extra" ./etc/dpkg/dpkg.cfg.d/tabletd-slim |
    docker import -c 'CMD ["/bin/bash"]' -m "debootstrap --variant=minbase bookworm" - "$BASE" >/dev/null
  rm -rf "$extra"
}

# build TAG DOCKERFILE CONTEXT [extra docker build args]: the classic builder (no BuildKit:
# it works on Docker 20.10 and 28 alike and needs no plugin); apt-get output only on failure.
build() {
  local tag=$1 file=$2 ctx=$3; shift 3
  local log; log=$(mktemp)
  if ! DOCKER_BUILDKIT=0 docker build -q -f "$file" -t "$tag" "$@" "$ctx" >"$log" 2>&1; then
    tail -20 "$log" >&2; offline_hint; rm -f "$log"
    die "building $tag failed"
  fi
  rm -f "$log"
}

tabletd_image() {
  local v=$1 ctx=$2
  echo "image: go build (static, -trimpath) tabletd and tabletctl $v"
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
  chmod 1777 "$ctx/rootfs/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\ntabletd:x:65532:65532:tabletd:/tmp:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\ntabletd:x:65532:\n' >"$ctx/rootfs/etc/group"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$v" -o "$ctx/rootfs/" ./cmd/tabletd ./cmd/tabletctl
  touch -d @0 "$ctx/rootfs" "$ctx/rootfs"/* "$ctx/rootfs"/*/*   # same bytes, same times: docker's cache hits
  cp deploy/image/tabletd.Dockerfile "$ctx/Dockerfile"
  build "tabletd:$v" "$ctx/Dockerfile" "$ctx" --build-arg "VERSION=$v"
  docker tag "tabletd:$v" tabletd:latest
}

mariadb_image() {
  local v=$1
  echo "image: tabletd-mariadb:$v (Debian's MariaDB 10.11; apt-get the first time only)"
  build "tabletd-mariadb:$v" deploy/image/mariadb.Dockerfile deploy/image --build-arg "BASE=$BASE" --build-arg "TABLETD=tabletd:$v"
  docker tag "tabletd-mariadb:$v" tabletd-mariadb:latest
}

vitess_image() {
  local ctx=$1
  for p in vtctld vtgate vtctldclient; do
    [ -x "$VITESS_BIN/$p" ] || {
      echo "image: $VITESS_BIN/$p is missing: building Vitess v23 with scripts/build-vitess.sh (5-8 minutes the first time; needs the Go module proxy)"
      VITESS_BIN=$VITESS_BIN "$here/scripts/build-vitess.sh" || die "scripts/build-vitess.sh failed: Vitess's vtctld/vtgate are needed for the compose cluster (make vitess)"
      break
    }
  done
  echo "image: tabletd-vitess:$VITESS_TAG (etcd from Debian, vtctld, vtgate, vtctldclient from $VITESS_BIN)"
  mkdir -p "$ctx/bin"
  for p in vtctld vtgate vtctldclient; do
    objcopy --strip-debug "$VITESS_BIN/$p" "$ctx/bin/$p" 2>/dev/null || cp "$VITESS_BIN/$p" "$ctx/bin/$p"
  done
  touch -d @0 "$ctx/bin" "$ctx/bin"/*
  cp deploy/image/vitess.Dockerfile "$ctx/Dockerfile"
  cp -r deploy/image/vitess "$ctx/vitess"
  build "tabletd-vitess:$VITESS_TAG" "$ctx/Dockerfile" "$ctx" --build-arg "BASE=$BASE"
}

sizes() {
  local v; v=$(version)
  docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' |
    grep -E "^(tabletd:$v|tabletd-mariadb:$v|tabletd-vitess:$VITESS_TAG|$BASE)[[:space:]]" || true
}

case "${1:-build}" in
  version) version; exit 0 ;;
  sizes) check_docker; sizes; exit 0 ;;
  build) ;;
  *) echo "usage: scripts/image.sh [build|version|sizes]" >&2; exit 2 ;;
esac
check_docker
v=$(version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base_image
mkdir -p "$work/tabletd" "$work/vitess"
tabletd_image "$v" "$work/tabletd"
mariadb_image "$v"
vitess_image "$work/vitess"
echo "image: built (docker images):"
sizes | sed 's/^/  /'
