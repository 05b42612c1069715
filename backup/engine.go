package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/tabletd/tabletd/replication"
)

// Engine names (--backup-engine-implementation and the MANIFEST's BackupMethod).
const (
	EngineMariabackup = "mariabackup"
	EngineXtrabackup  = "xtrabackup"
)

// ErrToolMissing: the backup tool the engine runs is not installed.
var ErrToolMissing = errors.New("backup tool not installed")

// tools are the programs of a streaming engine for one server flavor.
type tools struct {
	backup, stream string // mariabackup + mbstream, or xtrabackup + xbstream
	group          string // option group of the tool's defaults file
}

// findTools locates the programs for flavor: in root when set (--xtrabackup-root-path),
// else on PATH. MariaDB's tool is mariabackup (Debian: package mariadb-backup), MySQL's
// Percona XtraBackup.
func findTools(flavor replication.Flavor, root string) (tools, error) {
	var t tools
	var backups []string
	var stream string
	if flavor.IsMariaDB() {
		backups, stream, t.group = []string{"mariabackup", "mariadb-backup"}, "mbstream", "mariabackup"
	} else {
		backups, stream, t.group = []string{"xtrabackup"}, "xbstream", "xtrabackup"
	}
	find := func(name string) (string, error) {
		if root != "" {
			p := filepath.Join(root, name)
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p, nil
			}
			return "", fmt.Errorf("%w: %s is not in --xtrabackup-root-path %s", ErrToolMissing, name, root)
		}
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: %s is not on PATH (%s)", ErrToolMissing, name, installHint(flavor))
		}
		return p, nil
	}
	var err error
	for _, b := range backups {
		if t.backup, err = find(b); err == nil {
			break
		}
	}
	if err != nil {
		names := backups[0]
		if len(backups) > 1 {
			names += " (or " + strings.Join(backups[1:], ", ") + ")"
		}
		return tools{}, fmt.Errorf("%w: %s is not %s (%s)", ErrToolMissing, names, where(root), installHint(flavor))
	}
	if t.stream, err = find(stream); err != nil {
		return tools{}, err
	}
	return t, nil
}

func where(root string) string {
	if root != "" {
		return "in --xtrabackup-root-path " + root
	}
	return "on PATH"
}

func installHint(flavor replication.Flavor) string {
	if flavor.IsMariaDB() {
		return "install it: apt-get install mariadb-backup"
	}
	return "install Percona XtraBackup 8.0 for MySQL 8.0, 8.4 for MySQL 8.4"
}

// toolCnf writes the defaults file the tool reads its connection from (mode 0600, so the
// password is never on a command line); the caller removes it.
func toolCnf(dir string, t tools, src Source, dataDir string) (string, error) {
	f, err := os.CreateTemp(dir, ".tabletd-backup-*.cnf")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, g := range []string{t.group, "xtrabackup"} {
		fmt.Fprintf(&b, "[%s]\nuser=%s\n", g, src.User)
		if src.Password != "" {
			fmt.Fprintf(&b, "password=%s\n", src.Password)
		}
		if src.Socket != "" {
			fmt.Fprintf(&b, "socket=%s\n", src.Socket)
		} else {
			fmt.Fprintf(&b, "host=%s\nport=%d\n", src.Host, src.Port)
		}
		if dataDir != "" {
			fmt.Fprintf(&b, "datadir=%s\n", dataDir)
		}
		if t.group == "xtrabackup" {
			break
		}
	}
	if _, err := f.WriteString(b.String()); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), f.Close()
}

// gtidRE finds the position in xtrabackup_info (mariabackup writes the same wording).
var gtidRE = regexp.MustCompile(`GTID of the last change '([^']*)'`)

// readToolPosition reads the backup's position from the info file the tool wrote in lsnDir.
func readToolPosition(lsnDir string, flavor replication.Flavor) (replication.Position, error) {
	for _, name := range []string{"xtrabackup_info", "mariadb_backup_info"} {
		b, err := os.ReadFile(filepath.Join(lsnDir, name))
		if err != nil {
			continue
		}
		m := gtidRE.FindSubmatch(b)
		if m == nil {
			return replication.Position{}, fmt.Errorf("%s has no \"GTID of the last change\": is binary logging on?", name)
		}
		return replication.ParseGTIDSet(flavor.PositionFlavor(), strings.TrimSpace(string(m[1])))
	}
	return replication.Position{}, errors.New("the backup tool wrote no xtrabackup_info")
}

// toolRun is one run of a backup tool: its stderr is kept (last lines) for the error message.
type toolRun struct {
	cmd  *exec.Cmd
	tail *lineTail
}

func newToolRun(ctx context.Context, bin string, args ...string) *toolRun {
	cmd := exec.CommandContext(ctx, bin, args...)
	// The tool dies with tabletd (a killed tabletd leaves no orphan writing a backup), and
	// cancelling ctx kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t := &toolRun{cmd: cmd, tail: &lineTail{max: 400}}
	cmd.Stderr = t.tail
	return t
}

// err describes a failed run: the exit status and the tool's last error line.
func (t *toolRun) err(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s (%s) failed: %v: %s", what, filepath.Base(t.cmd.Path), err, t.tail.lastError())
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	mu      sync.Mutex
	max     int
	partial string
	lines   []string
}

func (l *lineTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(l.partial + string(p)))
	l.partial = ""
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if len(p) > 0 && p[len(p)-1] != '\n' && len(got) > 0 {
		l.partial, got = got[len(got)-1], got[:len(got)-1]
	}
	l.lines = append(l.lines, got...)
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
	return len(p), nil
}

// errLineRE matches what the tools print for an error.
var errLineRE = regexp.MustCompile(`(?i)(\berror\b|\[ERROR\]|failed|FATAL|cannot|can't|was only able|try increasing)`)

// last returns the last n lines, joined.
func (l *lineTail) last(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append(l.lines, l.partial)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lastError returns the last line that reads as an error, else the last line.
func (l *lineTail) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append(l.lines, l.partial)
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		if strings.Contains(s, "[Note]") || strings.Contains(s, "[Warning]") || strings.Contains(s, " Streaming ") ||
			strings.Contains(s, " Copying ") || strings.Contains(s, "...done") {
			continue
		}
		if errLineRE.MatchString(s) {
			if i > 0 && errLineRE.MatchString(lines[i-1]) && !strings.Contains(lines[i-1], "[Note]") {
				return strings.TrimSpace(lines[i-1]) + " " + strings.TrimSpace(s)
			}
			return strings.TrimSpace(s)
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return "no output"
}

// countingReader counts bytes read, for progress.
type countingReader struct {
	r io.Reader
	n *atomicInt64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
