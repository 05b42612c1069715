package mysqlctl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Controller shuts the tablet's mysqld down and starts it again (restores replace its datadir).
type Controller interface {
	// Shutdown stops mysqld and returns once its process has exited.
	Shutdown(ctx context.Context) error
	// Start starts mysqld and returns once it answers.
	Start(ctx context.Context) error
	// DataDir is the datadir a restore replaces.
	DataDir() string
	// Describe names the controller for logs.
	Describe() string
}

// Local controls a mysqld on this machine described by a my.cnf, as Vitess's mysqlctl does:
// SQL SHUTDOWN then waiting for the process to exit; start as `<mysqld> --defaults-file=FILE`,
// detached (it outlives tabletd), then waiting until it answers.
type Local struct {
	cnf    MyCnf
	binary string
	// db is the dba pool: SHUTDOWN and readiness pings go through it.
	db *sql.DB
	// poll is the pause between checks while waiting.
	poll time.Duration
}

// NewLocal returns a controller for the server of cnf. binary "" finds mariadbd (or mysqld)
// on PATH or in /usr/sbin.
func NewLocal(cnf MyCnf, binary string, db *sql.DB) (*Local, error) {
	if binary == "" {
		for _, name := range []string{"mariadbd", "mysqld"} {
			if p, err := lookPath(name); err == nil {
				binary = p
				break
			}
		}
		if binary == "" {
			return nil, errors.New("--mycnf-file: neither mariadbd nor mysqld is on PATH or in /usr/sbin: tabletd cannot start mysqld after a restore")
		}
	}
	return &Local{cnf: cnf, binary: binary, db: db, poll: 50 * time.Millisecond}, nil
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// DataDir implements Controller.
func (l *Local) DataDir() string { return l.cnf.DataDir }

// Describe implements Controller.
func (l *Local) Describe() string { return l.binary + " --defaults-file=" + l.cnf.Path }

// Cnf returns the parsed my.cnf.
func (l *Local) Cnf() MyCnf { return l.cnf }

// Shutdown implements Controller: SHUTDOWN over SQL, then wait until the process is gone.
func (l *Local) Shutdown(ctx context.Context) error {
	pid, pidErr := l.cnf.readPid()
	if pidErr == nil && !alive(pid) {
		return nil // already down
	}
	if _, err := l.db.ExecContext(ctx, "SHUTDOWN"); err != nil && l.answers(ctx) {
		return fmt.Errorf("SHUTDOWN of mysqld: %w", err)
	}
	for {
		down := false
		if pidErr == nil {
			down = !alive(pid)
		} else {
			_, statErr := os.Stat(l.cnf.pidFile())
			down = errors.Is(statErr, os.ErrNotExist) && !l.answers(ctx)
		}
		if down {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mysqld did not exit after SHUTDOWN: %w", ctx.Err())
		case <-time.After(l.poll):
		}
	}
}

// alive reports whether process pid exists and has not exited: a zombie (exited, not yet
// reaped by an init that may never reap it) counts as gone.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if rerr != nil {
		return true // no /proc: trust kill
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// answers pings mysqld once over a fresh connection.
func (l *Local) answers(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := l.db.Conn(cctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	return conn.PingContext(cctx) == nil
}

// Start implements Controller: mysqld runs detached in its own session, its output appended
// to its error log; Start returns once it answers, or fails with the error log's tail if it
// exits first.
func (l *Local) Start(ctx context.Context) error {
	args := []string{"--defaults-file=" + l.cnf.Path}
	if os.Geteuid() == 0 && l.cnf.User == "" {
		args = append(args, "--user=root") // mysqld refuses root without it
	}
	logPath := l.cnf.ErrorLog
	if logPath == "" {
		logPath = filepath.Join(l.cnf.DataDir, "mysqld-start.log")
	} else if !filepath.IsAbs(logPath) {
		logPath = filepath.Join(l.cnf.DataDir, logPath)
	}
	// sh starts mysqld in the background and exits at once: mysqld is re-parented to init
	// and nothing in tabletd has to wait for it (it must outlive tabletd).
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `log=$1; shift; exec "$@" </dev/null >>"$log" 2>&1 &`, "mysqld-start", logPath, l.binary}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("starting %s: %v %s", l.Describe(), err, strings.TrimSpace(string(out)))
	}
	sawPid := false
	for {
		if l.answers(ctx) {
			return nil
		}
		if pid, err := l.cnf.readPid(); err == nil {
			sawPid = true
			if !alive(pid) {
				return fmt.Errorf("mysqld (%s) exited while starting: %s", l.Describe(), logTail(logPath))
			}
		}
		select {
		case <-ctx.Done():
			if !sawPid {
				return fmt.Errorf("mysqld (%s) did not start: %w; %s", l.Describe(), ctx.Err(), logTail(logPath))
			}
			return fmt.Errorf("mysqld (%s) did not answer: %w", l.Describe(), ctx.Err())
		case <-time.After(l.poll):
		}
	}
}

// logTail returns the last lines of a log for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log at " + path
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return path + ": " + strings.Join(lines, " | ")
}
