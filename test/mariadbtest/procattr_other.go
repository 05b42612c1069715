//go:build !linux

package mariadbtest

import "syscall"

// procAttr puts mariadbd in its own process group, so cleanup can kill the
// group. Outside Linux there is no parent-death signal: a test process
// killed without running cleanups leaves its mariadbd running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
