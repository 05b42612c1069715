package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	// pollInterval is the pause between readiness probes.
	pollInterval = 20 * time.Millisecond
	// probeTimeout bounds one readiness probe.
	probeTimeout = time.Second
	// tailBytes is how much of the error log failure messages include.
	tailBytes = 4096
)

// errPortInUse marks a start that failed because the TCP port was taken.
var errPortInUse = errors.New("mariadbtest: port already in use")

// process is one run of mariadbd.
type process struct {
	cmd       *exec.Cmd
	logPath   string
	logOffset int64         // error log size before this run: its output starts here
	exited    chan struct{} // closed once the process has been reaped
	waitErr   error         // exit status; read only after exited is closed
}

// args returns the mariadbd command line. --no-defaults must come first.
func (s *Server) args() []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.DataDir,
		"--bind-address=" + s.Host,
		"--port=" + strconv.Itoa(s.Port),
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.DataDir, "mariadbd.pid"),
		"--log-error=" + s.errorLog(),
		"--server-id=" + strconv.FormatUint(uint64(s.ServerID), 10),
		"--log-bin=mysql-bin",
		"--relay-log=relay-bin",
		"--binlog-format=ROW",
		"--log-slave-updates",
		"--gtid-strict-mode=1",
		"--skip-slave-start",
		"--report-host=" + s.Host,
		"--report-port=" + strconv.Itoa(s.Port),
		"--innodb-flush-log-at-trx-commit=2",
		// Its own tmpdir: at start mariadbd deletes every #sql* file in its tmpdir, which
		// would destroy the internal temporary tables of the other servers sharing /tmp
		// (their information_schema queries then fail with errno 6).
		"--tmpdir=" + s.tmpDir(),
	}
	args = append(args, userArgs()...)
	args = append(args, sharedServerArgs()...)
	return append(args, s.extraArgs...)
}

// tmpDir is the server's own temporary directory, inside its base dir.
func (s *Server) tmpDir() string { return filepath.Join(s.baseDir, "tmp") }

// errorLog is the path of the server's error log.
func (s *Server) errorLog() string { return filepath.Join(s.DataDir, "error.log") }

// launch starts mariadbd and waits until it is ready; on success s.proc is
// set. The caller holds s.mu (or owns s exclusively, during Start).
func (s *Server) launch() error {
	p := &process{logPath: s.errorLog(), exited: make(chan struct{})}
	if st, err := os.Stat(p.logPath); err == nil {
		p.logOffset = st.Size()
	}
	// Output before mariadbd opens --log-error (e.g. a bad ExtraArgs option)
	// goes to stderr: send it to the same file.
	logFile, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("mariadbtest: open error log: %w", err)
	}
	p.cmd = exec.Command(s.mariadbd, s.args()...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = procAttr()
	err = p.cmd.Start()
	_ = logFile.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("mariadbtest: start %s: %w", s.mariadbd, err)
	}
	go func() { // ends when the process does; every path below reaps it
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := s.waitReady(p); err != nil {
		p.kill()
		<-p.exited // SIGKILL cannot be ignored
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls root over the socket until a ping succeeds, the process
// exits, or readyTimeout passes.
func (s *Server) waitReady(p *process) error {
	cfg := s.rootConfig()
	cfg.Timeout = probeTimeout
	cfg.Logger = nopLogger{} // refused probes are expected; don't spam stderr
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mariadbtest: root connector: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-deadline.C:
			return fmt.Errorf("mariadbtest: mariadbd on port %d not ready after %v (last error: %v); %s",
				s.Port, readyTimeout, err, p.logTail())
		case <-ticker.C:
		}
	}
}

// exitError describes an unexpected exit; it wraps errPortInUse when the
// port was taken. Call only after p.exited is closed.
func (p *process) exitError() error {
	log := p.logTail()
	err := fmt.Errorf("mariadbtest: mariadbd exited during startup (%v); %s", p.waitErr, log)
	if bytes.Contains(p.log(), []byte("Bind on TCP/IP port")) {
		return errors.Join(errPortInUse, err)
	}
	return err
}

// isPortInUse reports whether a launch failed because the port was taken.
func isPortInUse(err error) bool { return errors.Is(err, errPortInUse) }

// kill sends SIGKILL to the process group.
func (p *process) kill() {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Kill()
	}
}

// log returns the error log output of this run (best effort).
func (p *process) log() []byte {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(p.logOffset, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	return b
}

// logTail formats the end of this run's error log for failure messages.
func (p *process) logTail() string {
	return fmt.Sprintf("error log %s:\n%s", p.logPath, tail(p.log()))
}

// tail returns the last tailBytes of b, starting at a line boundary.
func tail(b []byte) []byte {
	if len(b) <= tailBytes {
		return b
	}
	b = b[len(b)-tailBytes:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

// nopLogger discards the mysql driver's logs.
type nopLogger struct{}

func (nopLogger) Print(...any) {}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		t.Fatalf("%v", err)
	}
}

// stopLocked is Stop with s.mu held.
func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.kill()
		<-p.exited
		return fmt.Errorf("mariadbtest: mariadbd on port %d did not stop within %v, killed it; %s",
			s.Port, stopTimeout, p.logTail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("mariadbtest: mariadbd on port %d exited with %v on shutdown; %s",
			s.Port, p.waitErr, p.logTail())
	}
	return nil
}

// Kill kills the server (SIGKILL to its process group) and waits for it to
// exit, simulating a crash. Killing a stopped server does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.killLocked(); err != nil {
		t.Fatalf("%v", err)
	}
}

// killLocked is Kill with s.mu held.
func (s *Server) killLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	p.kill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("mariadbtest: mariadbd pid %d still running %v after SIGKILL", p.cmd.Process.Pid, killTimeout)
	}
}

// Restart starts the server again on the same port, socket and data dir and
// waits until it is ready (after InnoDB crash recovery, if it was killed).
// A running server is stopped cleanly first. If another process briefly
// holds the port, Restart retries until readyTimeout.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		t.Fatalf("%v", err)
	}
	begin := time.Now()
	for {
		err := s.launch()
		if err == nil {
			break
		}
		if !isPortInUse(err) || time.Since(begin) > readyTimeout {
			t.Fatalf("mariadbtest: restart: %v", err)
		}
		<-time.After(pollInterval) // the port's holder may let go; bounded by readyTimeout above
	}
	t.Logf("mariadbtest: mariadbd restarted on %s:%d in %v", s.Host, s.Port, time.Since(begin).Round(time.Millisecond))
}

// RestartWith is Restart with extra mariadbd arguments for this run only (e.g. the crash
// recovery options of a killed semi-sync primary); later Restarts use the original ones.
func (s *Server) RestartWith(t testing.TB, args ...string) {
	t.Helper()
	s.mu.Lock()
	saved := s.extraArgs
	s.extraArgs = append(append([]string(nil), saved...), args...)
	s.mu.Unlock()
	s.Restart(t)
	s.mu.Lock()
	s.extraArgs = saved
	s.mu.Unlock()
}

// cleanup kills the server and removes its files. It runs at the end of the
// test that started the server, whether it passed or not.
func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.killLocked(); err != nil {
		t.Errorf("%v", err)
		return // don't delete files under a live process
	}
	if t.Failed() {
		if log, err := os.ReadFile(s.errorLog()); err == nil {
			t.Logf("mariadbtest: end of %s (server on port %d):\n%s", s.errorLog(), s.Port, tail(log))
		}
	}
	if err := os.RemoveAll(s.baseDir); err != nil {
		t.Errorf("mariadbtest: remove %s: %v", s.baseDir, err)
	}
}

// copyDir copies the template data dir to dst (which must not exist),
// keeping modes and timestamps.
func copyDir(src, dst string) error {
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy template %s to %s: %w: %s", src, dst, err, out)
	}
	return nil
}
