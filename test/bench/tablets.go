package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo/localetcd"
)

const (
	globalRoot = "/vitess/global"
	cell       = "zone1"
	// readyTimeout bounds a tablet's start until it answers select 1.
	readyTimeout = 2 * time.Minute
)

// commonTabletFlags are vttablet v23's defaults, passed explicitly to both
// tablets so neither runs with a different pool or limit by accident.
// tabletd gets each one only if its --help lists it.
var commonTabletFlags = [][2]string{
	{"--queryserver-config-pool-size", "16"},
	{"--queryserver-config-stream-pool-size", "200"},
	{"--queryserver-config-transaction-cap", "20"},
	{"--queryserver-config-query-timeout", "30s"},
	{"--queryserver-config-max-result-size", "10000"},
	{"--queryserver-config-stream-buffer-size", "32768"},
	{"--health-check-interval", "1s"},
}

// tablet is a running vttablet or tabletd.
type tablet struct {
	proc     *child
	client   *tabletTarget
	httpPort int
	flags    []string // the command line, for the report
	version  string
}

// topology is the in-process etcd with the cell created.
type topology struct {
	etcd *localetcd.Server
}

func startTopology(ctx context.Context, e *env, vitessBin string) (*topology, error) {
	srv, err := localetcd.Start(ctx, localetcd.Config{Dir: filepath.Join(e.dir, "etcd"), Unsafe: true})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	e.onClose(srv.Close)
	t := &topology{etcd: srv}
	args := append(t.flags(), "--server", "internal", "AddCellInfo",
		"--root", "/vitess/"+cell, "--server-address", srv.Endpoint(), cell)
	cmd := exec.CommandContext(ctx, filepath.Join(vitessBin, "vtctldclient"), args...)
	cmd.SysProcAttr = vtSysProcAttr(e)
	cmd.Dir = e.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("vtctldclient AddCellInfo: %w\n%s", err, out)
	}
	return t, nil
}

func (t *topology) flags() []string {
	return []string{"--topo-implementation", "etcd2", "--topo-global-server-address", t.etcd.Endpoint(),
		"--topo-global-root", globalRoot}
}

// dbFlags are the MySQL connection flags for the given roles.
func dbFlags(m *mariadb, roles []string, useSSLFlag bool) []string {
	// The unix socket, as a sidecar beside its MySQL would connect; both tablets alike.
	f := []string{"--db-socket", m.socket, "--init-db-name-override", dbName}
	for _, r := range roles {
		f = append(f, "--db-"+r+"-user", "vt_"+r, "--db-"+r+"-password", dbPassword)
		if useSSLFlag {
			f = append(f, "--db-"+r+"-use-ssl=false")
		}
	}
	return f
}

// startVttablet starts Vitess v23's vttablet (unmanaged, REPLICA, keyspace
// "bench") as the vt user and waits until it answers select 1.
func startVttablet(ctx context.Context, e *env, topo *topology, m *mariadb, vitessBin string) (*tablet, error) {
	bin := filepath.Join(vitessBin, "vttablet")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (build it with ../shared/interop/build-vitess.sh, or set VITESS_BIN)", err)
	}
	logDir, err := e.vtDir("vttablet-logs")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	roles := []string{"app", "appdebug", "allprivs", "dba", "filtered", "repl", "erepl"}
	args := append(topo.flags(), "--log_dir", logDir,
		"--tablet-path", cell+"-100", "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", "bench", "--init-shard", "0", "--init-tablet-type", "REPLICA", "--unmanaged",
		"--port", strconv.Itoa(ports[0]), "--grpc-port", strconv.Itoa(ports[1]),
		"--service-map", "grpc-queryservice,grpc-tabletmanager")
	args = append(args, dbFlags(m, roles, true)...)
	for _, f := range commonTabletFlags {
		args = append(args, f[0], f[1])
	}
	t := &tablet{httpPort: ports[0], flags: args, version: programVersion(bin)}
	if t.proc, err = e.start("vttablet", e.vtCred, bin, args...); err != nil {
		return nil, err
	}
	if err := t.connect(ctx, ports[1], "bench", topodatapb.TabletType_REPLICA); err != nil {
		return nil, err
	}
	return t, nil
}

// buildTabletd builds cmd/tabletd from src into the env dir.
func buildTabletd(ctx context.Context, e *env, src string) (string, error) {
	out := filepath.Join(e.dir, "tabletd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/tabletd")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tabletd failed (the tree does not compile right now): %w\n%s",
			err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// startTabletd starts tabletd (PRIMARY, keyspace "bench2", the same database)
// and waits until it answers select 1.
func startTabletd(ctx context.Context, e *env, topo *topology, m *mariadb, bin, version string) (*tablet, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	help, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	args := append(topo.flags(),
		"--tablet-path", cell+"-200", "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", "bench2", "--init-shard", "0", "--init-tablet-type", "PRIMARY", "--unmanaged",
		"--port", strconv.Itoa(ports[0]), "--grpc-port", strconv.Itoa(ports[1]),
		"--service-map", "grpc-queryservice,grpc-tabletmanager")
	args = append(args, dbFlags(m, []string{"app", "allprivs", "dba", "filtered", "repl"}, false)...)
	for _, f := range commonTabletFlags {
		if bytes.Contains(help, []byte(f[0]+" ")) {
			args = append(args, f[0], f[1])
		}
	}
	t := &tablet{httpPort: ports[0], flags: args, version: version}
	if t.proc, err = e.start("tabletd", nil, bin, args...); err != nil {
		return nil, err
	}
	if err := t.connect(ctx, ports[1], "bench2", topodatapb.TabletType_PRIMARY); err != nil {
		return nil, err
	}
	return t, nil
}

// errNotImplemented marks a tablet whose query service answers UNIMPLEMENTED.
var errNotImplemented = errors.New("query service not implemented")

// connect dials the tablet's gRPC port and polls select 1 until it works.
func (t *tablet) connect(ctx context.Context, grpcPort int, keyspace string, tt topodatapb.TabletType) error {
	c, err := dialTablet("127.0.0.1:"+strconv.Itoa(grpcPort), keyspace, tt, querypb.ExecuteOptions_ALL)
	if err != nil {
		return err
	}
	t.client = c
	deadline := time.Now().Add(readyTimeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = c.selectOne(pctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case isUnimplemented(err):
			return fmt.Errorf("%w: Execute answered %v", errNotImplemented, err)
		case !t.proc.running():
			return fmt.Errorf("%s exited (%v) before serving; last log lines:\n%s", t.proc.name, t.proc.waitErr, t.proc.logTail())
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s does not answer select 1 after %v (last error: %v); last log lines:\n%s",
				t.proc.name, readyTimeout, err, t.proc.logTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// vtSysProcAttr runs short Vitess commands as the vt user when we are root.
func vtSysProcAttr(e *env) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: e.vtCred}
}

// programVersion is the first line of `<bin> --version`.
func programVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// gitDescribe names the tabletd source: the commit, "-dirty" when files
// outside test/bench and docs (which a benchmark run itself changes) differ
// from it.
func gitDescribe(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--",
		".", ":(exclude)test/bench", ":(exclude)docs").Output()
	if err != nil || len(bytes.TrimSpace(st)) > 0 {
		v += "-dirty"
	}
	return v
}
