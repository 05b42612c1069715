package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// child is one process started by the benchmark, in its own process group.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once reaped
	waitErr error         // valid after exited is closed
}

// pid is the process id whose /proc entries are measured.
func (c *child) pid() int { return c.cmd.Process.Pid }

// running reports whether the process has not exited yet.
func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after stopTimeout,
// and waits for the process to be reaped.
func (c *child) stop() {
	if !c.running() {
		return
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.exited
	}
	// Anything the leader left behind in its group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// logTail returns the last lines of the child's log, for error messages.
func (c *child) logTail() string { return tailFile(c.logPath, 30) }

// tailFile returns up to n last lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// env owns the temporary directory and every child process; close stops
// the children in reverse start order and removes the directory.
type env struct {
	dir      string
	mu       sync.Mutex
	children []*child
	cleanups []func()
	vtCred   *syscall.Credential // nil when not root: Vitess then runs as us
	// tabletEnv is added to both tablets' environment (e.g. GOMAXPROCS=1), never to
	// mariadbd or the load generator, so both tablets run under the same settings.
	tabletEnv []string
}

func newEnv() (*env, error) {
	dir, err := os.MkdirTemp("", "tabletd-bench-")
	if err != nil {
		return nil, err
	}
	// Vitess programs run as the vt user; they need to traverse this dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	if os.Geteuid() == 0 {
		cred, err := lookupCred("vt")
		if err != nil {
			// As scripts/vitess-local.sh does: Vitess refuses to run as root.
			if out, uerr := exec.Command("useradd", "-m", "vt").CombinedOutput(); uerr == nil {
				fmt.Fprintln(os.Stderr, "bench: created the user vt (useradd -m vt): Vitess refuses to run as root")
				cred, err = lookupCred("vt")
			} else {
				err = fmt.Errorf("%w; useradd -m vt: %v %s", err, uerr, out)
			}
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("Vitess refuses to run as root and needs a user vt (useradd -m vt): %w", err)
		}
		e.vtCred = cred
	}
	return e, nil
}

// lookupCred returns the uid/gid of a local user.
func lookupCred(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// vtDir makes a subdirectory owned by (and writable for) the vt user.
func (e *env) vtDir(name string) (string, error) {
	d := filepath.Join(e.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	if e.vtCred != nil {
		if err := os.Chown(d, int(e.vtCred.Uid), int(e.vtCred.Gid)); err != nil {
			return "", err
		}
	}
	return d, nil
}

// onClose registers f to run (in reverse order) when the env closes.
func (e *env) onClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// start launches a program with output to <dir>/<name>.log and extraEnv
// added to its environment. cred, when set, runs it as that user (setuid by
// the kernel at exec, so the pid we hold is the program's own, which /proc
// accounting needs; runuser would fork).
func (e *env) start(name string, cred *syscall.Credential, extraEnv []string, bin string, args ...string) (*child, error) {
	logPath := filepath.Join(e.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: the terminal's Ctrl-C reaches only us, and we stop
	// the children in order. Pdeathsig: the kernel kills the child if we die
	// without cleaning up (it is set after the credential change, which
	// would otherwise clear it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	cmd.Env = append(childEnv(cred != nil, e.dir), extraEnv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	e.mu.Lock()
	e.children = append(e.children, c)
	e.mu.Unlock()
	return c, nil
}

// childEnv is our environment without the Go runtime's GC settings, so that
// every Go child (the tablets, vtgate) runs with the GC target the report
// states rather than one inherited from the shell; as the vt user, with its
// own HOME.
func childEnv(asVT bool, home string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOGC", "GOMEMLIMIT":
			continue
		case "HOME", "USER", "LOGNAME":
			if asVT {
				continue
			}
		}
		out = append(out, kv)
	}
	if asVT {
		out = append(out, "HOME="+home, "USER=vt", "LOGNAME=vt")
	}
	return out
}

// close stops every child (newest first), runs the cleanups and removes
// the directory unless keep is set.
func (e *env) close(keep bool) {
	e.mu.Lock()
	children, cleanups := e.children, e.cleanups
	e.children, e.cleanups = nil, nil
	e.mu.Unlock()
	for i := len(children) - 1; i >= 0; i-- {
		children[i].stop()
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	if keep {
		fmt.Fprintf(os.Stderr, "bench: logs and data kept in %s\n", e.dir)
		return
	}
	_ = os.RemoveAll(e.dir)
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
