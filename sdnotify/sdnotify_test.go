package sdnotify

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a real datagram socket, as systemd does for NOTIFY_SOCKET.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyOverRealSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := "@tabletd-sdnotify-test-" + filepath.Base(t.TempDir())
	for _, tc := range []struct {
		name, socket string
		states       []string
		want         string
	}{
		{"path, one state", path, []string{Ready}, "READY=1"},
		{"path, states in one datagram", path, []string{Ready, Status("serving as\nREPLICA")}, "READY=1\nSTATUS=serving as REPLICA"},
		{"abstract socket", abstract, []string{Stopping}, "STOPPING=1"},
		{"watchdog", abstract, []string{Watchdog}, "WATCHDOG=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.socket == path {
				_ = os.Remove(path)
			}
			l := listen(t, tc.socket)
			n, err := New(tc.socket)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(tc.states...); err != nil {
				t.Fatal(err)
			}
			if got := read(t, l); got != tc.want {
				t.Fatalf("datagram %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNilNotifierSendsNothing(t *testing.T) {
	n, err := New("")
	if err != nil || n != nil {
		t.Fatalf("New(\"\") = %v, %v; want nil, nil", n, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("nil notifier: %v", err)
	}
	if n.Socket() != "" {
		t.Fatal("nil notifier has a socket")
	}
}

func TestBadSockets(t *testing.T) {
	for _, s := range []string{"vsock:2:1234", "relative/path", "x"} {
		if _, err := New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	n, err := New(filepath.Join(t.TempDir(), "nobody-listens"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("send to a missing socket: %v, want ENOENT", err)
	}
	if err := n.Notify("READY"); err == nil {
		t.Fatal("a state without = was sent")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		bad             bool
	}{
		{"off", "", "", 0, false},
		{"for us", "30000000", "42", 30 * time.Second, false},
		{"no pid given", "500000", "", 500 * time.Millisecond, false},
		{"for another process", "30000000", "7", 0, false},
		{"zero", "0", "", 0, true},
		{"negative", "-1", "", 0, true},
		{"not a number", "30s", "", 0, true},
		{"bad pid", "1000", "me", 0, true},
		{"too large", "9223372036854775807", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WatchdogInterval(tc.usec, tc.pid, 42)
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("WatchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.bad)
			}
		})
	}
}
