package systemd_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// notifySocket is a real datagram socket in the role of systemd's NOTIFY_SOCKET: every
// datagram the daemon sends arrives on msgs, in order.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short path: unix socket names are limited to 108 bytes and t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1000)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return // closed by the cleanup
			}
			s.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return s
}

// next returns the next datagram, failing after timeout.
func (s *notifySocket) next(t *testing.T, timeout time.Duration, what string) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(timeout):
		t.Fatalf("no datagram within %v while waiting for %s", timeout, what)
		return ""
	}
}

// until reads datagrams until one satisfies ok and returns it with those before it.
func (s *notifySocket) until(t *testing.T, what string, ok func(string) bool) (string, []string) {
	t.Helper()
	var before []string
	for {
		m := s.next(t, 60*time.Second, what)
		if ok(m) {
			return m, before
		}
		before = append(before, m)
	}
}

func hasLine(msg, line string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func statusOf(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if s, ok := strings.CutPrefix(l, "STATUS="); ok {
			return s
		}
	}
	return ""
}

// notifyEnv is the environment systemd gives a Type=notify service.
func notifyEnv(socket string, watchdog time.Duration) []string {
	env := []string{"NOTIFY_SOCKET=" + socket}
	if watchdog > 0 {
		env = append(env, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds()))
	}
	return env
}

// TestSystemdNotify runs the real tabletd against a real mariadbd and etcd with a real
// NOTIFY_SOCKET, as systemd starts a Type=notify unit: READY=1 comes when the tablet serves
// (default) or when it is registered (--systemd-ready registered, for a replica waiting for
// vtctld), never before; STATUS= says why it is not ready; WATCHDOG=1 pings arrive while
// WATCHDOG_USEC is set; SIGTERM sends STOPPING=1 before the daemon exits 0.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	bin := tabletdBin
	etcd := topology(t)
	for _, tc := range []struct {
		name      string
		uid       int
		initType  string
		readyWhen string // --systemd-ready; "" = default (serving)
		serving   bool   // the tablet serves when ready
		watchdog  time.Duration
	}{
		{"primary ready when serving, watchdog", 601, "PRIMARY", "", true, 400 * time.Millisecond},
		{"replica ready when registered", 602, "REPLICA", "registered", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := mariadbtest.Start(t, mariadbtest.Options{})
			db.Exec(t, "CREATE DATABASE IF NOT EXISTS vt_commerce")
			sock := listenNotify(t)
			httpPort := freePort(t)
			args := tabletArgs(etcd, db, tc.uid, httpPort, "--init-tablet-type", tc.initType)
			if tc.readyWhen != "" {
				args = append(args, "--systemd-ready", tc.readyWhen)
			}
			d := startDaemon(t, bin, notifyEnv(sock.path, tc.watchdog), args...)

			ready, before := sock.until(t, "READY=1", func(m string) bool { return hasLine(m, "READY=1") })
			for _, m := range before {
				if hasLine(m, "WATCHDOG=1") || hasLine(m, "STOPPING=1") {
					continue
				}
				if !strings.HasPrefix(m, "STATUS=") {
					t.Fatalf("before READY=1 only STATUS= lines may come, got %q", m)
				}
			}
			if got := serves(httpPort); got != tc.serving {
				t.Fatalf("at READY=1 (%q) /debug/health serving=%v, want %v", ready, got, tc.serving)
			}
			status := statusOf(ready)
			switch {
			case tc.serving && status != "serving as "+tc.initType:
				t.Fatalf("STATUS with READY=1 = %q, want %q", status, "serving as "+tc.initType)
			case !tc.serving && !strings.HasPrefix(status, "registered as "+tc.initType+", not serving: "):
				t.Fatalf("STATUS with READY=1 = %q, want it to say the %s is registered and why it does not serve", status, tc.initType)
			}
			if tc.watchdog > 0 {
				for i := 0; i < 3; i++ {
					sock.until(t, "WATCHDOG=1", func(m string) bool { return m == "WATCHDOG=1" })
				}
			}
			if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			stopping, _ := sock.until(t, "STOPPING=1", func(m string) bool { return hasLine(m, "STOPPING=1") })
			if !strings.HasPrefix(statusOf(stopping), "shutting down") {
				t.Fatalf("STOPPING=1 came with %q, want a shutting-down status", stopping)
			}
			if code := d.exitCode(t); code != 0 {
				t.Fatalf("exit code %d after SIGTERM, want 0", code)
			}
		})
	}
}

// TestSystemdReadyWaitsForServing: a replica whose replication is not set up never serves,
// so with the default --systemd-ready serving it reports why over STATUS= and does not send
// READY=1 (systemd keeps the unit "activating").
func TestSystemdReadyWaitsForServing(t *testing.T) {
	t.Parallel()
	bin := tabletdBin
	etcd := topology(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE IF NOT EXISTS vt_commerce")
	sock := listenNotify(t)
	httpPort := freePort(t)
	startDaemon(t, bin, notifyEnv(sock.path, 0), tabletArgs(etcd, db, 603, httpPort, "--init-tablet-type", "REPLICA")...)
	msg, before := sock.until(t, "a registered, not serving status", func(m string) bool {
		return strings.HasPrefix(statusOf(m), "registered as REPLICA, not serving: ")
	})
	for _, m := range append(before, msg) {
		if hasLine(m, "READY=1") {
			t.Fatalf("READY=1 sent for a replica that does not serve (%q)", m)
		}
	}
	if serves(httpPort) {
		t.Fatal("the replica serves: the test's premise is wrong")
	}
}

// TestSystemdBadEnvironment: an unusable NOTIFY_SOCKET or WATCHDOG_USEC stops the start with
// exit code 2 and a line naming the variable.
func TestSystemdBadEnvironment(t *testing.T) {
	t.Parallel()
	bin := tabletdBin
	etcd := topology(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	for _, tc := range []struct {
		name, env, want string
	}{
		{"vsock socket", "NOTIFY_SOCKET=vsock:2:999", "NOTIFY_SOCKET"},
		{"relative socket", "NOTIFY_SOCKET=notify", "NOTIFY_SOCKET"},
		{"bad watchdog", "WATCHDOG_USEC=soon", "WATCHDOG_USEC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tabletArgs(etcd, db, 604, freePort(t))...)
			cmd.Env = append(os.Environ(), tc.env)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not name %s:\n%s", tc.want, out)
			}
		})
	}
}
