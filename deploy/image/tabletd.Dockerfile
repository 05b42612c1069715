# tabletd:<version> — the static tabletd (and tabletctl) FROM scratch, as user 65532.
# Built by scripts/image.sh (make image) from a context holding rootfs/: /tabletd, /tabletctl
# (CGO_ENABLED=0, -trimpath, version from git), /etc/passwd and /etc/group naming the user,
# and /tmp. There is no shell: the health check is tabletctl probe.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="tabletd" \
      org.opencontainers.image.description="Vitess v23 vttablet drop-in (tabletd), static binary" \
      org.opencontainers.image.version="${VERSION}"
COPY rootfs/ /
USER 65532:65532
# --port (HTTP: status, health, metrics) and --grpc-port defaults; vitess-operator uses 15000/15999.
EXPOSE 15000 16000
# Healthy = the process answers (/healthz) and the tablet serves (/debug/health): a replica
# waiting for vtctld, or one whose MariaDB is down, is "unhealthy" with the reason in
# `docker inspect`. The check assumes --port 15000; override it where the port differs.
HEALTHCHECK --interval=5s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/tabletctl", "probe", "--timeout", "4s", "http://127.0.0.1:15000/healthz", "http://127.0.0.1:15000/debug/health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/tabletd"]
