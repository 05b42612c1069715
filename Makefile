# tabletd — make targets. The scripts are the entry points (they need no make, so they work
# as the first command on a fresh machine); these targets are aliases:
#   make test  = ./scripts/test.sh (what CI runs, .ci/run)   make demo = ./scripts/demo.sh
# `make build` puts tabletd and tabletctl in bin/; `make interop` runs the tests against real
# Vitess v23 programs, which `make vitess` builds.
GO ?= go
VITESS_BIN ?= /opt/vitess-v23/bin

.PHONY: all build deps test demo interop vitess
all: build

build:
	$(GO) build -o bin/ ./cmd/...

deps:
	@scripts/install-deps.sh

# go vet, then the whole suite with -race: unit tests and integration tests against real
# mariadbd processes and an in-process etcd.
test:
	@scripts/test.sh

demo:
	@scripts/demo.sh

# Builds Vitess v23 from the vitess.io/vitess Go module (once per machine) and runs the
# interop tests against it, plus the wire check of our .proto files against Vitess's.
vitess:
	VITESS_BIN=$(VITESS_BIN) scripts/build-vitess.sh

interop: vitess
	@scripts/install-deps.sh --interop
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags interop -count=1 -timeout 20m -v ./test/interop/ ./proto/

# ---------------------------------------------------------------------------
# proto: regenerate the Go code in proto/<name>pb/ from proto/*.proto.
#
# Needs Debian's protoc (apt-get install protobuf-compiler). The Go plugins
# (protoc-gen-go, protoc-gen-go-grpc, protoc-gen-go-vtproto) are the versions
# pinned in go.mod's tool block; "go tool -n" builds them (cached) and prints
# their path. Code is generated into a temporary directory first, so a bad
# .proto leaves the existing files alone. Only *.pb.go files are replaced;
# the hand-written doc.go of each package stays (a new package needs one).
# Output is deterministic: running the target twice changes nothing.
# ---------------------------------------------------------------------------
PROTOC ?= protoc
PROTO_MODULE := github.com/tabletd/tabletd
PROTO_FILES = $(sort $(wildcard proto/*.proto))
PROTO_VTPROTO_FEATURES := marshal+unmarshal+size

.PHONY: proto
proto:
	@set -e; \
	gen_go=$$(go tool -n protoc-gen-go); \
	gen_grpc=$$(go tool -n protoc-gen-go-grpc); \
	gen_vt=$$(go tool -n protoc-gen-go-vtproto); \
	out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	$(PROTOC) -I proto \
		--plugin=protoc-gen-go="$$gen_go" \
		--plugin=protoc-gen-go-grpc="$$gen_grpc" \
		--plugin=protoc-gen-go-vtproto="$$gen_vt" \
		--go_out="$$out" --go_opt=module=$(PROTO_MODULE) \
		--go-grpc_out="$$out" --go-grpc_opt=module=$(PROTO_MODULE) \
		--go-vtproto_out="$$out" --go-vtproto_opt=module=$(PROTO_MODULE),features=$(PROTO_VTPROTO_FEATURES) \
		$(PROTO_FILES); \
	rm -f proto/*pb/*.pb.go; \
	for f in $$(cd "$$out" && find proto -name '*.pb.go' | sort); do \
		mkdir -p "$$(dirname "$$f")"; cp "$$out/$$f" "$$f"; \
	done; \
	for d in proto/*pb; do \
		[ -f "$$d/doc.go" ] || echo "proto: warning: $$d has no doc.go (package doc comment)"; \
	done; \
	echo "proto: generated Go for $(notdir $(PROTO_FILES))"

# ---------------------------------------------------------------------------
# bench: MariaDB direct vs tabletd vs Vitess v23 vttablet, side by side in one run, over
# queryservice gRPC (1 to 1,000 clients, and a 1M-row stream) and through a real vtgate
# with sysbench oltp_point_select and oltp_read_only (docs/benchmarks.md). Both tablets
# PRIMARY, the same flags, consolidator and database socket. Builds the Vitess peers if
# missing, runs as root (Vitess itself runs as the vt user); refuses a tree with changes
# outside test/bench and docs (BENCH_EXTRA=-allow-dirty measures it, marked dirty). About
# 30 minutes with the flags below; the tables go to stdout, the raw per-round numbers to
# docs/benchmarks-raw.json. tabletd runs at its own GC default (--gc-percent 200); the
# run at vttablet's GOGC=100:
#   make bench BENCH_EXTRA="-tabletd-gogc 100 -out docs/benchmarks-gogc100-raw.json"
# ---------------------------------------------------------------------------
BENCH_FLAGS ?= -duration 10s -rounds 5 -clients 1,8,64,1000 -vtgate-leg -vtgate-threads 8,64 -out docs/benchmarks-raw.json
BENCH_EXTRA ?=

.PHONY: bench
bench: vitess
	@scripts/install-deps.sh
	command -v sysbench >/dev/null || apt-get install -y sysbench
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) run ./test/bench $(BENCH_FLAGS) $(BENCH_EXTRA)

# ---------------------------------------------------------------------------
# bench-reparent: write unavailability of PlannedReparentShard and (after kill -9 of the
# primary's mariadbd) EmergencyReparentShard through a real vtgate, for tabletd, and what
# Vitess v23's vttablet does on the same MariaDB shard (docs/benchmarks.md, "Reparenting").
# About a minute; raw figures in docs/reparent-raw.json.
# ---------------------------------------------------------------------------
REPARENT_ROUNDS ?= 5

.PHONY: bench-reparent
bench-reparent: vitess
	@scripts/install-deps.sh --interop
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags interop -count=1 -timeout 20m -v -run TestReparentTimings ./test/interop/ \
		-reparent-rounds $(REPARENT_ROUNDS) -reparent-out $(CURDIR)/docs/reparent-raw.json

# ---------------------------------------------------------------------------
# vttablet: tabletd under the name vttablet (README, "Running as vttablet"): bin/vttablet is
# a symlink to bin/tabletd; put bin/ first in PATH for tools that run `vttablet`.
# interop-dropin: only the drop-in interop tests — the e2e cluster's and vitess-operator's
# vttablet command lines, unchanged, on MariaDB servers made by Vitess's mysqlctl.
# ---------------------------------------------------------------------------
.PHONY: vttablet interop-dropin
vttablet: build
	ln -sf tabletd bin/vttablet

interop-dropin: vitess
	@scripts/install-deps.sh --interop
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags interop -count=1 -timeout 20m -v -run 'TestDropIn' ./test/interop/

# ---------------------------------------------------------------------------
# bench-backup: on one ~1 GB MariaDB datadir, side by side: the raw pipe `mariabackup
# --stream=mbstream | zstd -1 -T2 > file`, tabletd's Backup RPC to file storage (one and two
# stripes) and tabletd's RestoreFromBackup with its phases (docs/benchmarks.md, "Backups").
# About 10 minutes; raw figures in docs/backup-raw.json.
# ---------------------------------------------------------------------------
BACKUP_BENCH_MB ?= 1100
BACKUP_BENCH_ROUNDS ?= 3

.PHONY: bench-backup
bench-backup:
	@scripts/install-deps.sh
	command -v zstd >/dev/null 2>&1 || apt-get install -y -qq zstd
	$(GO) test -count=1 -timeout 40m -v -run TestBackupThroughput ./test/integration/ \
		-backup-bench-mb $(BACKUP_BENCH_MB) -backup-bench-rounds $(BACKUP_BENCH_ROUNDS) -backup-bench-out $(CURDIR)/docs/backup-raw.json

# ---------------------------------------------------------------------------
# status-screenshot: sysbench oltp_read_write through a real vtgate to a tabletd primary,
# then headless Chromium screenshots /debug/status (README, "Observability"); the test
# checks the charts are drawn with data. STATUS_SCREENSHOT names the PNG (default
# docs/status-under-sysbench.png), STATUS_LOAD_SECONDS the load (default 120). About 4 min.
# ---------------------------------------------------------------------------
STATUS_SCREENSHOT ?= $(CURDIR)/docs/status-under-sysbench.png
STATUS_LOAD_SECONDS ?= 120

.PHONY: status-screenshot
status-screenshot: vitess
	@scripts/install-deps.sh --interop
	command -v chromium >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) STATUS_SCREENSHOT=$(STATUS_SCREENSHOT) STATUS_LOAD_SECONDS=$(STATUS_LOAD_SECONDS) \
		$(GO) test -tags interop -count=1 -timeout 15m -v -run TestStatusPageUnderSysbench ./test/interop/

# ---------------------------------------------------------------------------
# bench-vreplication: MoveTables copy rows/s (one 1M-row sysbench table, and eight) and the
# replication phase's apply lag under sysbench oltp_write_only at 8 threads, with Vitess's
# vttablet on both ends and with tabletd on both ends (docs/benchmarks.md, "VReplication").
# About 25 minutes; raw figures in docs/vreplication-raw.json.
# ---------------------------------------------------------------------------
VREPL_BENCH_ROWS ?= 1000000
VREPL_BENCH_TABLES ?= 8
VREPL_BENCH_LOAD ?= 30s
VREPL_BENCH_ROUNDS ?= 3

.PHONY: bench-vreplication
bench-vreplication: vitess
	@scripts/install-deps.sh --interop
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags interop -count=1 -timeout 90m -v -run TestVReplicationBenchmark ./test/interop/ \
		-vrepl-bench-rows $(VREPL_BENCH_ROWS) -vrepl-bench-tables $(VREPL_BENCH_TABLES) -vrepl-bench-load $(VREPL_BENCH_LOAD) -vrepl-bench-rounds $(VREPL_BENCH_ROUNDS) \
		-vrepl-bench-out $(CURDIR)/docs/vreplication-raw.json

# ---------------------------------------------------------------------------
# Packaging and deployment (README, "Deploy"; deploy/).
# image: tabletd:<version> (FROM scratch), tabletd-mariadb:<version> (Debian's MariaDB 10.11),
#   tabletd-vitess:v23.0.0 (etcd, vtctld, vtgate), all from local material (scripts/image.sh).
# compose-up / compose-down: the deploy/compose cluster (scripts/compose.sh).
# compose-test: the integration and chaos tests against a cluster of its own (test/compose,
#   build tag compose), removed afterwards whatever happens. A named stage, not in .ci/run.
# ---------------------------------------------------------------------------
COMPOSE_TEST_TIMEOUT ?= 25m

.PHONY: image compose-up compose-down compose-test
image:
	@scripts/image.sh

compose-up: image
	@scripts/compose.sh up

compose-down:
	@scripts/compose.sh down

compose-test: image
	@scripts/compose-test.sh $(COMPOSE_TEST_TIMEOUT)

# ---------------------------------------------------------------------------
# soak: sysbench oltp_read_write through a real vtgate to tabletd for SOAK_DURATION while
# mysqld is SIGKILLed and restarted SOAK_KILLS times; every acknowledged write checked after,
# RSS and goroutines sampled (docs/reliability.md). Not in CI: about 12 minutes.
# ---------------------------------------------------------------------------
SOAK_DURATION ?= 10m
SOAK_KILLS ?= 5

.PHONY: soak
soak: vitess
	@scripts/install-deps.sh --interop
	command -v sysbench >/dev/null || apt-get install -y sysbench
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags 'interop soak' -count=1 -timeout 40m -v -run TestSoak ./test/interop/ \
		-soak-duration $(SOAK_DURATION) -soak-kills $(SOAK_KILLS) -soak-out $(CURDIR)/docs/reliability-soak.json

# ---------------------------------------------------------------------------
# bench-vdiff: VDiff rows compared per second on one 1M-row sysbench table after MoveTables,
# vttablet on both ends against tabletd on both ends, rounds alternating (docs/benchmarks.md,
# "VDiff"; raw figures docs/vdiff-raw.json). About 5 minutes.
# ---------------------------------------------------------------------------
VDIFF_BENCH_ROWS ?= 1000000
VDIFF_BENCH_ROUNDS ?= 3

.PHONY: bench-vdiff
bench-vdiff: vitess
	@scripts/install-deps.sh --interop
	id vt >/dev/null 2>&1 || useradd -m vt
	VITESS_BIN=$(VITESS_BIN) $(GO) test -tags interop -count=1 -timeout 90m -v -run TestVDiffBenchmark ./test/interop/ \
		-vdiff-bench-rows $(VDIFF_BENCH_ROWS) -vdiff-bench-rounds $(VDIFF_BENCH_ROUNDS) -vdiff-bench-out $(CURDIR)/docs/vdiff-raw.json

# ---------------------------------------------------------------------------
# fuzz: every go test -fuzz target for FUZZTIME each, one after another (docs/reliability.md
# records the durations run). Not in CI beyond the seed corpora every go test runs.
# ---------------------------------------------------------------------------
FUZZTIME ?= 2m

.PHONY: fuzz
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh
