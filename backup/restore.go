package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tabletd/tabletd/backup/mysqlctl"
	"github.com/tabletd/tabletd/replication"
)

// ErrNoFit: backups exist but none fits the request (time, engine, flavor); the error lists why.
var ErrNoFit = errors.New("no backup fits")

// RestoreRequest says what to restore and how.
type RestoreRequest struct {
	Keyspace, Shard string
	// BackupTime: the newest backup taken at or before it (zero: the newest).
	BackupTime     time.Time
	AllowedEngines []string
	DryRun         bool
	Flavor         replication.Flavor // the server's
	// Controller stops and starts mysqld; nil refuses with ErrNotManaged.
	Controller mysqlctl.Controller
	// BeforeStop runs once the backup is downloaded, verified and prepared, just before
	// mysqld is stopped (stop replication); a restore that fails earlier changed nothing.
	BeforeStop func(ctx context.Context) error
	// AfterStart runs once mysqld answers again (set the replication position); the
	// restore-in-progress marker is removed only after it succeeds.
	AfterStart func(ctx context.Context, m *Manifest) error
	Log        Logf
}

// MarkerPath is Vitess's restore_in_progress file, beside the datadir: while it exists the
// datadir is not a finished restore and the tablet restores again at start.
func MarkerPath(dataDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dataDir)), "restore_in_progress")
}

// MarkerExists reports an interrupted restore of dataDir.
func MarkerExists(dataDir string) bool {
	_, err := os.Stat(MarkerPath(dataDir))
	return err == nil
}

// FindBackup returns the newest complete backup that fits req: taken at or before
// req.BackupTime, by an allowed engine, of the server's flavor. ErrNoBackup when the shard
// has no complete backup at all; ErrNoFit, naming each backup's reason, when none fits.
func (s *Service) FindBackup(ctx context.Context, req RestoreRequest) (*Manifest, error) {
	if s.storage == nil {
		return nil, ErrNoStorage
	}
	dir := req.Keyspace + "/" + req.Shard
	names, err := s.storage.ListBackups(ctx, dir)
	if err != nil {
		return nil, err
	}
	var reasons []string
	complete := 0
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		m, err := s.readManifest(ctx, dir, n)
		if err != nil {
			req.Log(Info, "Skipping backup %s: incomplete or unreadable (%v)", n, err)
			continue
		}
		complete++
		if why := s.unfit(m, req); why != "" {
			reasons = append(reasons, n+": "+why)
			req.Log(Info, "Skipping backup %s: %s", n, why)
			continue
		}
		return m, nil
	}
	if complete == 0 {
		return nil, fmt.Errorf("%w in %s (%s)", ErrNoBackup, dir, s.storage.Describe())
	}
	return nil, fmt.Errorf("%w in %s: %s", ErrNoFit, dir, strings.Join(reasons, "; "))
}

func (s *Service) unfit(m *Manifest, req RestoreRequest) string {
	if !req.BackupTime.IsZero() {
		if t, err := time.Parse(time.RFC3339, m.BackupTime); err == nil && t.After(req.BackupTime) {
			return fmt.Sprintf("taken at %s, after the requested %s", m.BackupTime, req.BackupTime.UTC().Format(time.RFC3339))
		}
	}
	if len(req.AllowedEngines) > 0 && !slices.Contains(req.AllowedEngines, m.BackupMethod) {
		return fmt.Sprintf("taken with engine %q, not one of the allowed %s", m.BackupMethod, strings.Join(req.AllowedEngines, ","))
	}
	if m.Incremental {
		return "incremental backups are not restored by tabletd"
	}
	want := "MySQL"
	if req.Flavor.IsMariaDB() {
		want = "MariaDB"
	}
	if got := flavorOf(m.Position, m.MySQLVersion); got != want {
		return fmt.Sprintf("a %s backup (position %q, version %q) cannot be restored into this %s server", got, m.Position, m.MySQLVersion, want)
	}
	if m.BackupMethod != EngineMariabackup && m.BackupMethod != EngineXtrabackup {
		return fmt.Sprintf("engine %q is not one tabletd restores (mariabackup, xtrabackup)", m.BackupMethod)
	}
	return ""
}

// Restore replaces the datadir with a backup: download, verify and unpack beside the datadir
// while mysqld still runs (a corrupt backup is refused before anything is touched), prepare,
// then write the restore-in-progress marker, stop mysqld, move the files in, start mysqld,
// run AfterStart, remove the marker. The caller holds TryLock.
func (s *Service) Restore(ctx context.Context, req RestoreRequest) (*Manifest, error) {
	begin := s.now()
	s.mu.Lock()
	s.lastRestore = Result{Started: begin}
	s.mu.Unlock()
	m, err := s.restore(ctx, req)
	s.finish(&s.lastRestore, "restore", begin, m, err)
	if err != nil {
		if !errors.Is(err, ErrNoBackup) {
			s.metrics.failures.WithLabelValues("restore").Inc()
		}
		return nil, err
	}
	s.metrics.duration.WithLabelValues("restore").Observe(s.now().Sub(begin).Seconds())
	if !req.DryRun {
		s.metrics.bytes.WithLabelValues("restore").Add(float64(storedSize(m)))
	}
	return m, nil
}

func (s *Service) restore(ctx context.Context, req RestoreRequest) (*Manifest, error) {
	m, err := s.FindBackup(ctx, req)
	if err != nil {
		return nil, err
	}
	req.Log(Info, "Restoring backup %s (engine %s, position %s)", m.BackupName, m.BackupMethod, m.Position)
	if req.DryRun {
		req.Log(Info, "Dry run: backup %s would be restored", m.BackupName)
		return m, nil
	}
	if req.Controller == nil {
		return nil, fmt.Errorf("%w: restoring needs --mycnf-file (tabletd stops and starts mysqld itself) or --mysqlctl-socket (a mysqlctld does)", ErrNotManaged)
	}
	t, err := findTools(req.Flavor, s.cfg.ToolRootPath)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Clean(req.Controller.DataDir())
	staging := filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".tabletd-restore")
	defer os.RemoveAll(staging)
	phase := func(name string, f func() error) error {
		p := s.now()
		err := f()
		s.AddRestorePhase(name, s.now().Sub(p))
		if err == nil {
			req.Log(Info, "Restore phase %s done in %v", name, s.now().Sub(p).Round(time.Millisecond))
		}
		return err
	}
	if err := phase("download+decompress", func() error { return s.extract(ctx, t, m, staging, req.Log) }); err != nil {
		return nil, err
	}
	if err := phase("prepare", func() error { return s.prepare(ctx, t, staging) }); err != nil {
		return nil, err
	}
	if req.BeforeStop != nil {
		if err := req.BeforeStop(ctx); err != nil {
			return nil, err
		}
	}
	marker := MarkerPath(dataDir)
	if err := os.WriteFile(marker, []byte(m.BackupName+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("writing the restore-in-progress marker %s: %w", marker, err)
	}
	if err := phase("stop mysqld", func() error { return req.Controller.Shutdown(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("move-back", func() error { return s.moveBack(ctx, t, staging, dataDir) }); err != nil {
		return nil, err
	}
	if err := phase("start mysqld", func() error { return req.Controller.Start(ctx) }); err != nil {
		return nil, err
	}
	if req.AfterStart != nil {
		if err := req.AfterStart(ctx, m); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(marker); err != nil {
		return nil, fmt.Errorf("removing the restore-in-progress marker %s: %w", marker, err)
	}
	return m, nil
}

// extract downloads the stripes, checks them against the MANIFEST and unpacks the stream
// into staging with mbstream/xbstream.
func (s *Service) extract(ctx context.Context, t tools, m *Manifest, staging string, logf Logf) error {
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	if err := os.Mkdir(staging, 0o750); err != nil {
		return fmt.Errorf("creating the restore's staging directory: %w", err)
	}
	dir := m.Keyspace + "/" + m.Shard
	r, err := openStriped(ctx, s.storage, dir, m.BackupName, m)
	if err != nil {
		return err
	}
	defer r.Close()
	xctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := newToolRun(xctx, t.stream, "-x", "-C", staging)
	in, err := run.cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := run.cmd.Start(); err != nil {
		return run.err("unpacking the backup stream", err)
	}
	var n atomicInt64
	stop := s.progress(ctx, "restore", &n, m.DataSize, logf)
	_, cerr := io.Copy(in, countingReader{r: r, n: &n})
	stop()
	_ = in.Close()
	if cerr != nil {
		cancel()
	}
	werr := run.cmd.Wait()
	var ce *CorruptError
	if (werr != nil || cerr != nil) && !errors.As(cerr, &ce) && ctx.Err() == nil {
		// The unpacker may trip over a damaged stripe before our check reaches that
		// stripe's end (mbstream has checksums of its own): look at the rest first.
		if verr := r.verifyRest(); errors.As(verr, &ce) {
			return verr
		}
	}
	switch {
	case errors.As(cerr, &ce) || (cerr != nil && ctx.Err() != nil):
		return cerr
	case werr != nil: // before cerr: writing to an unpacker that failed is only a broken pipe
		return run.err("unpacking the backup stream", werr)
	case cerr != nil:
		return fmt.Errorf("reading backup %s: %w", m.BackupName, cerr)
	}
	return nil
}

func (s *Service) prepare(ctx context.Context, t tools, staging string) error {
	run := newToolRun(ctx, t.backup, "--prepare", "--target-dir="+staging)
	return run.err("preparing the backup", run.cmd.Run())
}

// moveBack empties the datadir (keeping the directory) and moves the prepared files in,
// owned by the datadir's owner.
func (s *Service) moveBack(ctx context.Context, t tools, staging, dataDir string) error {
	st, err := os.Stat(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return err
		}
		st, err = os.Stat(dataDir)
	}
	if err != nil {
		return fmt.Errorf("datadir %s: %w", dataDir, err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("datadir %s: %w", dataDir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			return fmt.Errorf("emptying datadir %s: %w", dataDir, err)
		}
	}
	cnf := filepath.Join(staging, "..", "."+filepath.Base(dataDir)+".tabletd-moveback.cnf")
	body := fmt.Sprintf("[%s]\ndatadir=%s\n", t.group, dataDir)
	if err := os.WriteFile(cnf, []byte(body), 0o600); err != nil {
		return err
	}
	defer os.Remove(cnf)
	run := newToolRun(ctx, t.backup, "--defaults-file="+cnf, "--move-back", "--target-dir="+staging)
	if err := run.cmd.Run(); err != nil {
		return run.err("moving the restored files into the datadir", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		uid, gid := int(sys.Uid), int(sys.Gid)
		return filepath.WalkDir(dataDir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
	}
	return nil
}
