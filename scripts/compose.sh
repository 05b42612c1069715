#!/usr/bin/env bash
# The compose cluster of deploy/compose/ (README, "Deploy"):
#   scripts/compose.sh up       start it (images from `make image`), make zone1-101 the primary
#                               of commerce/0, wait until the three tablets serve, print the
#                               vtgate MySQL address and each tablet's /debug/status URL
#   scripts/compose.sh down     remove every container, network, volume and secret of it
#   scripts/compose.sh status   the same addresses, and `docker-compose ps`
#   scripts/compose.sh dc ARGS  docker-compose with the project's settings (e.g. dc logs tabletd1)
# Settings (environment): COMPOSE_PROJECT_NAME (default tabletd) names the cluster; host
# ports VTGATE_MYSQL_PORT (15306), VTGATE_PORT (15001), VTCTLD_PORT (15000),
# VTCTLD_GRPC_PORT (15999), TABLETD{1,2,3}_PORT (15101-15103), MARIADB{1,2,3}_PORT
# (13101-13103), BACKUP{1,2}_PORT (15201-15202), all on 127.0.0.1; an empty value lets
# Docker choose. TABLETD_VERSION picks the image tag (default: this tree's when built, else latest).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-tabletd}
if [ -z "${TABLETD_VERSION:-}" ]; then
  # This tree's images when make image built them, else the newest build (:latest).
  TABLETD_VERSION=$("$here/scripts/image.sh" version)
  docker image inspect "tabletd:$TABLETD_VERSION" >/dev/null 2>&1 || TABLETD_VERSION=latest
fi
export TABLETD_VERSION
export TABLETD_SECRETS=${TABLETD_SECRETS:-/tmp/tabletd-compose-$COMPOSE_PROJECT_NAME}
project=$COMPOSE_PROJECT_NAME
file=$here/deploy/compose/docker-compose.yml

die() { echo "compose: $*" >&2; exit 1; }
dc() { docker-compose --project-directory "$here/deploy/compose" -f "$file" "$@"; }
vtctl() { dc exec -T vtctld vtctldclient --server localhost:15999 "$@"; }

preflight() {
  command -v docker >/dev/null 2>&1 || die "no docker command: install Docker Engine (apt-get install docker.io)"
  docker info >/dev/null 2>&1 || die "the Docker daemon is not running (start it: systemctl start docker, or service docker start)"
  command -v docker-compose >/dev/null 2>&1 || die "no docker-compose command: apt-get install docker-compose"
  for img in "tabletd:$TABLETD_VERSION" "tabletd-mariadb:$TABLETD_VERSION" tabletd-vitess:v23.0.0; do
    docker image inspect "$img" >/dev/null 2>&1 || die "image $img is missing: build it with make image (scripts/image.sh)"
  done
}

# running lists the project's containers, whatever state they are in.
containers() { docker ps -aq --filter "label=com.docker.compose.project=$project"; }

# ports_free refuses to start when a host port is taken, naming it and its setting.
ports_free() {
  local var name port taken=()
  for var in VTGATE_MYSQL_PORT:15306 VTGATE_PORT:15001 VTCTLD_PORT:15000 VTCTLD_GRPC_PORT:15999 \
    TABLETD1_PORT:15101 TABLETD2_PORT:15102 TABLETD3_PORT:15103 MARIADB1_PORT:13101 MARIADB2_PORT:13102 MARIADB3_PORT:13103; do
    name=${var%%:*}
    if [ -n "${!name+x}" ]; then port=${!name}; else port=${var#*:}; fi
    [ -z "$port" ] && continue   # empty: Docker picks a free port
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then taken+=("127.0.0.1:$port ($name)"); fi
  done
  [ ${#taken[@]} -eq 0 ] || die "already in use: ${taken[*]}; stop what listens there, or set the variable to another port (empty: any free port); nothing was started"
}

secrets() {
  mkdir -p "$TABLETD_SECRETS"
  chmod 700 "$TABLETD_SECRETS"
  if [ ! -s "$TABLETD_SECRETS/vt-password" ]; then
    local pw
    pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    ( umask 077
      printf '%s' "$pw" >"$TABLETD_SECRETS/vt-password"
      printf '{"vt_dba": ["%s"], "vt_app": ["%s"], "vt_allprivs": ["%s"], "vt_repl": ["%s"], "vt_filtered": ["%s"]}\n' \
        "$pw" "$pw" "$pw" "$pw" "$pw" >"$TABLETD_SECRETS/credentials.json" )
  fi
  # Read inside the containers by tabletd (uid 65532, or mysql in an all-in-one tablet); the
  # directory (0700, root) keeps them from other users of this machine.
  chmod 444 "$TABLETD_SECRETS/vt-password" "$TABLETD_SECRETS/credentials.json"
}

hostport() { dc port "$1" "$2" 2>/dev/null | head -1; }

addresses() {
  local gate
  gate=$(hostport vtgate 15306)
  echo "compose: cluster $project is up"
  echo "  vtgate MySQL:  $gate      mariadb -h${gate%:*} -P${gate##*:} commerce"
  echo "  vtgate status: http://$(hostport vtgate 15001)/debug/status"
  echo "  vtctld:        http://$(hostport vtctld 15000)/   gRPC $(hostport vtctld 15999)"
  for i in 1 2 3; do
    echo "  zone1-10$i:     http://$(hostport tabletd$i 15000)/debug/status   (MariaDB $(hostport mariadb$i 3306))"
  done
  echo "  from a container: docker-compose exec mariadb1 mariadb -hvtgate -P15306 commerce   (scripts/compose.sh dc …)"
}

wait_for() { # wait_for SECONDS WHAT COMMAND…
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { echo "compose: $what: not within ${limit}s" >&2; return 1; }
    sleep 1
  done
}

healthy() { # healthy SERVICE…: every one's health check passes
  local s id
  for s in "$@"; do
    id=$(dc ps -q "$s")
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)" = healthy ] || return 1
  done
}

registered() {
  local out
  out=$(vtctl GetTablets --keyspace commerce) || return 1
  [ "$(grep -c ' commerce 0 ' <<<"$out")" -ge 3 ]
}

up() {
  preflight
  [ -z "$(containers)" ] || die "cluster $project is already up (or half-removed): scripts/compose.sh down first, or set COMPOSE_PROJECT_NAME to start another"
  ports_free
  secrets
  trap 'echo "compose: start failed; removing what was started" >&2; dc logs --tail 20 >&2 || true; down >/dev/null 2>&1 || true' ERR
  echo "compose: docker-compose up (project $project, images $TABLETD_VERSION)"
  dc up -d >"$TABLETD_SECRETS/up.log" 2>&1 || { cat "$TABLETD_SECRETS/up.log" >&2; false; }
  [ "$(dc ps -q | wc -l)" -ge 10 ] || { dc ps >&2; false; }
  wait_for 120 "the three tablets registered in the topology" registered
  local shard
  shard=$(vtctl GetShard commerce/0)
  if ! grep -Eq '"primary_alias": *\{' <<<"$shard"; then
    echo "compose: vtctldclient InitShardPrimary --force commerce/0 zone1-101"
    vtctl InitShardPrimary --force commerce/0 zone1-101 >/dev/null
  fi
  wait_for 180 "every tablet serving (docker health checks)" healthy tabletd1 tabletd2 tabletd3
  wait_for 60 "vtgate answering" dc exec -T mariadb1 mariadb -hvtgate -P15306 -e 'show vitess_tablets'
  trap - ERR
  addresses
}

down() {
  dc --profile backup down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
  # Whatever compose did not remove (a container started outside it, a failed removal).
  local ids
  ids=$(containers)
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null
  ids=$(docker network ls -q --filter "label=com.docker.compose.project=$project")
  [ -z "$ids" ] || docker network rm $ids >/dev/null
  ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
  [ -z "$ids" ] || docker volume rm -f $ids >/dev/null
  rm -rf "$TABLETD_SECRETS"
  echo "compose: cluster $project removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) addresses; dc ps ;;
  dc) shift; dc "$@" ;;
  *) sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0" >&2; exit 2 ;;
esac
