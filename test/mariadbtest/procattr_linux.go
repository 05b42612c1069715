package mariadbtest

import "syscall"

// procAttr puts mariadbd in its own process group (so cleanup can kill the
// group) and has the kernel kill it if the test process dies without running
// cleanups, e.g. when go test's -timeout panics. Pdeathsig fires when the
// forking OS thread exits; the Go runtime does not exit threads except for
// goroutines that end while locked to one, which this package never does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
