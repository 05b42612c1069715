package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/test/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noEnv(string) string { return "" }

// runArgs runs the daemon as tabletd with args, stdout discarded.
func runArgs(ctx context.Context, args []string, stderr io.Writer, env func(string) string) int {
	return run(ctx, append([]string{"tabletd"}, args...), io.Discard, stderr, env)
}

// base is a valid command line except for the topology, which each case supplies.
var base = []string{"--tablet-path", "zone1-100", "--init-keyspace", "commerce", "--init-shard", "0",
	"--db-host", "127.0.0.1", "--port", "0", "--grpc-port", "0", "--tablet-hostname", "127.0.0.1"}

// TestBadInput: every bad input is a one-line error naming the problem, exit code 2.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	unknownKey := filepath.Join(dir, "unknown.yaml")
	_ = os.WriteFile(badYAML, []byte("tablet-path: [unclosed\n"), 0o644)
	_ = os.WriteFile(unknownKey, []byte("tablet-pathh: zone1-1\n"), 0o644)
	topoArgs := []string{"--topo-global-server-address", "127.0.0.1:1"}
	with := func(extra ...string) []string {
		return append(append(append([]string{}, base...), topoArgs...), extra...)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		mention string // the flag or value the message must name
	}{
		{"unknown flag", with("--no-such-flag"), "--no-such-flag"},
		{"malformed duration", with("--health-check-interval", "soon"), "health-check-interval"},
		{"tablet path without uid", with("--tablet-path", "zone1"), "--tablet-path"},
		{"tablet path with letters", with("--tablet-path", "zone1-abc"), "--tablet-path"},
		{"shard not a key range", with("--init-shard", "80-40"), "--init-shard"},
		{"shard with bad hex", with("--init-shard", "zz-"), "--init-shard"},
		{"tablet type", with("--init-tablet-type", "BACKUP"), "--init-tablet-type"},
		{"unreadable config file", with("--config", filepath.Join(dir, "missing.yaml")), "--config"},
		{"malformed config file", with("--config", badYAML), "--config"},
		{"unknown config key", with("--config", unknownKey), "tablet-pathh"},
		{"topo implementation", with("--topo-implementation", "zk2"), "--topo-implementation"},
		{"service map", with("--service-map", "grpc-nosuch"), "--service-map"},
		{"no topology", base, "--topo-global-server-address"},
		{"embedded topology removed", append(append([]string{}, base...), "--embedded-topo-dir", dir), "tabletctl topo-server"},
		{"stray argument", with("extra"), "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := runArgs(context.Background(), tc.args, &stderr, noEnv)
			out := strings.TrimSpace(stderr.String())
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, out)
			}
			if strings.Count(out, "\n") > 0 && !strings.Contains(tc.name, "flag") {
				t.Errorf("error is not one line: %q", out)
			}
			if !strings.Contains(out, tc.mention) {
				t.Errorf("error %q does not name %q", out, tc.mention)
			}
		})
	}
}

// TestCellMissingExits2 runs the daemon against a real etcd without the cell: exit 2, nothing written.
func TestCellMissingExits2(t *testing.T) {
	e := etcdtest.Start(t)
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{}, base...), "--topo-global-server-address", e.Endpoint(), "--log-format", "console")
	code := runArgs(ctx, args, &stderr, noEnv)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "zone1") || !strings.Contains(last, "AddCellInfo") {
		t.Fatalf("last line does not name the cell and the fix: %q", last)
	}
	r, err := e.Client(t).Get(context.Background(), "/vitess/global/keyspaces", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 0 {
		t.Fatalf("%d keys written for a refused tablet", len(r.Kvs))
	}
}

// TestConfigFile: the YAML file carries the same settings; flags win.
func TestConfigFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tabletd.yaml")
	yaml := "tablet-path: zone2-7\ninit-keyspace: ks\ninit-shard: \"-80\"\ndb-host: db\ninit-tags:\n  rack: r1\nservice-map: [grpc-queryservice, grpc-tabletmanager]\nhealth-check-interval: 5s\n"
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse([]string{"--config", f, "--init-keyspace", "fromflag", "--topo-global-server-address", "x:1"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, f); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.toConfig(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alias.Cell != "zone2" || cfg.Alias.Uid != 7 || cfg.Keyspace != "fromflag" || cfg.Shard != "-80" ||
		cfg.DB.Host != "db" || cfg.Tags["rack"] != "r1" || len(cfg.ServiceMap) != 2 || cfg.Query.HealthCheckInterval != 5*time.Second {
		t.Fatalf("config from file: %+v", cfg)
	}
}
