# tabletd-vitess:v23.0.0 — the control plane of the compose cluster: Debian's etcd
# (etcd-server) and Vitess v23's vtctld, vtgate and vtctldclient, built by
# scripts/build-vitess.sh and copied here with their debug info stripped. Vitess refuses to
# run as root: the image runs as the user vt.
ARG BASE=tabletd-debian:bookworm
FROM ${BASE}
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && useradd --uid 1000 --create-home vt && mkdir -p /vt/etcd /vt/logs && chown -R vt:vt /vt
COPY bin/ /usr/local/bin/
COPY vitess/ /
USER vt
WORKDIR /vt
