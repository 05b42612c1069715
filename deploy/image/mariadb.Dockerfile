# tabletd-mariadb:<version> — Debian 12's MariaDB 10.11 (mariadb-server, mariadb-client,
# mariadb-backup) on the debootstrapped base, for the compose cluster and the tests, with:
#   mariadb-entrypoint (default)  mariadbd in the foreground, as the pod's MySQL container
#   tablet-allinone FLAGS…        mariadbd and tabletd in one container: tabletd can run
#                                 mariabackup and stop/start mariadbd (restores)
# Built by scripts/image.sh; the apt-get layer is cached, so later builds need no network.
ARG BASE=tabletd-debian:bookworm
ARG TABLETD=tabletd:latest
FROM ${TABLETD} AS tabletd
FROM ${BASE}
# policy-rc.d: the package's maintainer scripts must not start a server during the build.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      mariadb-server mariadb-client mariadb-backup >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* /usr/sbin/policy-rc.d \
 && mkdir -p /run/mysqld /backups && chown mysql:mysql /run/mysqld /var/lib/mysql /backups
COPY mariadb/ /
COPY --from=tabletd /tabletd /tabletctl /usr/local/bin/
EXPOSE 3306
VOLUME ["/var/lib/mysql", "/run/mysqld"]
HEALTHCHECK --interval=2s --timeout=5s --start-period=120s --retries=3 \
  CMD ["mariadb-admin", "--socket=/run/mysqld/mysqld.sock", "--connect-timeout=3", "ping", "--silent"]
ENTRYPOINT ["/usr/local/bin/mariadb-entrypoint"]
