// Package sdnotify provides systemd's service notification protocol (sd_notify(3)): state
// lines such as READY=1, STATUS=…, STOPPING=1 and WATCHDOG=1 sent as one datagram to the
// unix socket systemd names in $NOTIFY_SOCKET, and the watchdog interval systemd asks for.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The states tabletd sends (sd_notify(3)).
const (
	Ready    = "READY=1"    // startup finished: systemctl start returns
	Stopping = "STOPPING=1" // shutdown began
	Watchdog = "WATCHDOG=1" // alive: resets WatchdogSec's timer
)

// Status is the STATUS= line `systemctl status` shows. It is one line: newlines would start
// another state assignment, so they are replaced.
func Status(s string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// Notifier sends states to one socket. The zero of *Notifier (nil) is valid and sends
// nothing: not started by systemd.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for socket, the value of $NOTIFY_SOCKET: a path, or an abstract
// socket written "@name". An empty socket returns nil (no notifications). systemd's vsock
// addresses (vsock:CID:PORT, for virtual machines) are refused with an error naming them.
func New(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return nil, nil
	case strings.HasPrefix(socket, "vsock:"):
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: vsock notification sockets are not supported; run tabletd with a unix socket (a systemd unit on the host)", socket)
	case socket[0] != '/' && socket[0] != '@':
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: want an absolute path or an abstract socket (@name)", socket)
	}
	// Go writes an abstract address as a leading '@' too and turns it into the NUL byte.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Notify sends the states as one datagram ("A=1\nB=2"). A nil Notifier does nothing. Each
// call opens its own socket, as sd_notify does, so a systemd restarted meanwhile still hears
// the next one. The send does not block: a datagram either goes into the socket's queue or
// the call fails.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	msg := strings.Join(states, "\n")
	for _, s := range states {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("sdnotify: %q is not a VARIABLE=value state", s)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: sending to %s: %w", n.addr.Name, err)
	}
	return nil
}

// Socket is the address the notifier sends to ("" for nil).
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.addr.Name
}

// WatchdogInterval reads systemd's $WATCHDOG_USEC and $WATCHDOG_PID (passed in as values;
// self is this process's pid) and returns the interval the service must ping within: 0 when
// the watchdog is off or meant for another process (WATCHDOG_PID names someone else).
func WatchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID %q is not a process id", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	if us > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, errors.New("WATCHDOG_USEC is out of range")
	}
	return time.Duration(us) * time.Microsecond, nil
}
