package mariadbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// installHint is the set-up command named by every missing-binary failure.
	installHint = "make test installs it; or: apt-get install -y mariadb-server"
	// installTimeout bounds mariadb-install-db (normally under a second).
	installTimeout = 2 * time.Minute
)

// extraBinDirs are searched after PATH; Debian keeps mariadbd in /usr/sbin,
// which is not on the PATH of unprivileged users.
func extraBinDirs() []string {
	return []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"}
}

// shared is the one package-level variable of this package: the template data
// dir, built by mariadb-install-db once per test process and copied for every
// server. The project forbids globals so that two instances can share a
// process; this is test-only infrastructure whose content is immutable once
// built, and building it per server would cost a second per server, so the
// whole test binary shares it. It is created lazily on first use.
var shared templateCache

// templateCache builds the template once and remembers the outcome.
type templateCache struct {
	once     sync.Once
	tmpl     *template
	err      error
	duration time.Duration // how long building took
	reported atomic.Bool   // whether a test has logged duration
	// reaperPipe is the write end of the pipe the reaper shell waits on;
	// it stays open for the life of the process.
	reaperPipe *os.File
}

// template is a freshly installed data dir with the test users created.
type template struct {
	mariadbd string // path of the server binary
	dataDir  string // installed data dir; never started, only copied
}

// get returns the shared template, building it on first call.
func (c *templateCache) get() (*template, error) {
	c.once.Do(func() {
		begin := time.Now()
		c.tmpl, c.err = c.build()
		c.duration = time.Since(begin)
	})
	return c.tmpl, c.err
}

// errMissingBinary is wrapped by lookups of binaries that are not installed.
var errMissingBinary = errors.New("not installed")

// findBinary looks name up on PATH, then in extraBinDirs.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range extraBinDirs() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found on PATH or in %s: %s",
		errMissingBinary, name, strings.Join(extraBinDirs(), ", "), installHint)
}

// tempRoot is where per-process dirs go. Unix socket paths are limited to
// about 107 bytes, so a long $TMPDIR (macOS, some CI) falls back to /tmp.
func tempRoot() string {
	if d := os.TempDir(); len(d) <= 40 {
		return d
	}
	return "/tmp"
}

// dirPrefix names every dir this process creates, for the reaper.
func dirPrefix() string {
	return "mdbtest" + strconv.Itoa(os.Getpid()) + "-"
}

// build runs mariadb-install-db with the test users into a new dir.
func (c *templateCache) build() (*template, error) {
	mariadbd, err := findBinary("mariadbd")
	if err != nil {
		return nil, err
	}
	installDB, err := findBinary("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	if err := c.startReaper(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempRoot(), dirPrefix()+"tmpl-")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: create template dir: %w", err)
	}
	usersFile := filepath.Join(dir, "users.sql")
	if err := os.WriteFile(usersFile, []byte(usersSQL()), 0o600); err != nil {
		return nil, fmt.Errorf("mariadbtest: write users sql: %w", err)
	}
	dataDir := filepath.Join(dir, "data")
	// A private tmpdir: bootstraps of parallel test processes otherwise share /tmp for their
	// temporary tables and have been seen to clash ("Unknown table 'mysql.tmp_user_sys'").
	tmpDir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("mariadbtest: create template tmpdir: %w", err)
	}
	args := append([]string{
		"--no-defaults",
		"--datadir=" + dataDir,
		"--tmpdir=" + tmpDir,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--extra-file=" + usersFile,
	}, userArgs()...)
	args = append(args, sharedServerArgs()...)
	var err2 error
	for attempt := 0; attempt < 2; attempt++ { // one retry: a loaded machine has failed a bootstrap once
		if err2 = runInstallDB(installDB, args); err2 == nil {
			return &template{mariadbd: mariadbd, dataDir: dataDir}, nil
		}
		_ = os.RemoveAll(dataDir)
	}
	return nil, err2
}

func runInstallDB(installDB string, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, installDB, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadbtest: %s %s: %w\n%s", installDB, strings.Join(args, " "), err, tail(out.Bytes()))
	}
	return nil
}

// userArgs runs the server as root when we are root (mariadbd refuses to
// otherwise); unprivileged users run it as themselves.
func userArgs() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

// sharedServerArgs are the options that both mariadb-install-db and every
// server must agree on (InnoDB file layout) or that make both faster.
func sharedServerArgs() []string {
	return []string{
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=8M",
		// Native AIO contexts are a host-wide limit (fs.aio-max-nr) that many
		// parallel servers can exhaust; the tests do not need AIO's speed.
		"--innodb-use-native-aio=0",
		"--performance-schema=OFF",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
	}
}

// startReaper starts a small shell that removes every dir this process
// created (template and servers, all named dirPrefix()...) once the process
// is gone. go test gives packages no exit hook, t.Cleanup does not run when
// -timeout panics, and the template outlives every test, so the shell blocks
// reading a pipe whose only writer is kept open by this process until it
// exits, however it exits. It runs in its own process group so that the
// Ctrl-C which kills go test does not kill it before it has cleaned up.
func (c *templateCache) startReaper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("mariadbtest: reaper pipe: %w", err)
	}
	defer r.Close() // the shell keeps its own copy
	cmd := exec.Command("/bin/sh", "-c", `read -r _; exec rm -rf -- "$1"*`,
		"mariadbtest-reaper", filepath.Join(tempRoot(), dirPrefix()))
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return fmt.Errorf("mariadbtest: start reaper: %w", err)
	}
	// Never waited for: it exits only after this process has. Never closed:
	// keeping w referenced also keeps its finalizer from closing it.
	c.reaperPipe = w
	return nil
}
