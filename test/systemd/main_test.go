// Package systemd_test runs the real tabletd as systemd runs a Type=notify unit (a real
// NOTIFY_SOCKET datagram socket, WATCHDOG_USEC, SIGTERM) against real mariadbd and etcd,
// and checks deploy/systemd's unit with systemd-analyze verify.
package systemd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/etcdtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// tabletdBin is cmd/tabletd, built once for the package: these tests need the real process
// (its environment, signals, exit codes).
var tabletdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tabletd-systemd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tabletdBin = filepath.Join(dir, "tabletd")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goTool, "build", "-o", tabletdBin, "../../cmd/tabletd").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ../../cmd/tabletd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.Cleanup(func(code int) { os.RemoveAll(dir); os.Exit(code) }))
}

// topology is one etcd with the cell zone1 registered, as `vtctldclient AddCellInfo` leaves it.
func topology(t *testing.T) *etcdtest.Server {
	t.Helper()
	s := etcdtest.Start(t)
	b, err := proto.Marshal(&topodatapb.CellInfo{ServerAddress: s.Endpoint(), Root: "/vitess/zone1"})
	if err != nil {
		t.Fatal(err)
	}
	cli := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, path.Join("/vitess/global", "cells", "zone1", "CellInfo"), string(b)); err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tabletArgs are a tablet's flags against etcd and db; extra flags come last and win.
func tabletArgs(etcd *etcdtest.Server, db *mariadbtest.Server, uid, httpPort int, extra ...string) []string {
	return append([]string{"--topo-global-server-address", etcd.Endpoint(), "--tablet-path", fmt.Sprintf("zone1-%d", uid),
		"--tablet-hostname", "127.0.0.1", "--init-keyspace", "commerce", "--init-shard", "0",
		"--db-host", db.Host, "--db-port", strconv.Itoa(db.Port),
		"--db-dba-password", mariadbtest.Password, "--db-app-password", mariadbtest.Password,
		"--db-allprivs-password", mariadbtest.Password, "--db-filtered-password", mariadbtest.Password,
		"--db-repl-password", mariadbtest.Password, "--bind-address", "127.0.0.1", "--grpc-bind-address", "127.0.0.1",
		"--port", strconv.Itoa(httpPort), "--grpc-port", "0", "--health-check-interval", "1s"}, extra...)
}

func serves(httpPort int) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/health", httpPort))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// daemon is a tabletd process; the cleanup kills it.
type daemon struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, bin string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{out: &syncBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
		d.exited <- nil
		if t.Failed() {
			t.Logf("tabletd output:\n%s", d.out.String())
		}
	})
	return d
}

// exitCode waits for the process and returns its exit code.
func (d *daemon) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatal("tabletd did not exit within 60s")
		return -1
	}
}
