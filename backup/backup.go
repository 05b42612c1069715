package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/replication"
)

// Level is an event's severity (logutil's levels).
type Level int

// Event levels.
const (
	Info Level = iota
	Warning
	Error
)

// Logf receives a running backup's or restore's events (the RPC streams them to vtctld).
type Logf func(level Level, format string, args ...any)

// Source is the live server a backup reads.
type Source struct {
	DB   *sql.DB // dba pool
	Info replication.ServerInfo
	// How the tool connects: Socket, else Host and Port; as User with Password.
	Socket, Host   string
	Port           int
	User, Password string
}

// Deps are the service's collaborators.
type Deps struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	Clock    func() time.Time
	Storage  storage.Storage // nil: no backup storage configured (every call refuses)
}

// Service takes backups and restores them for one tablet; one at a time.
type Service struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	storage storage.Storage
	metrics *metrics

	busy sync.Mutex // held for the whole of a backup or restore

	mu          sync.Mutex
	lastBackup  Result
	lastRestore Result
	running     string // "backup of …" / "restore of …", "" when idle
}

// New returns a service; cfg must be valid.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: d.Log, now: d.Clock, storage: d.Storage, metrics: m}, nil
}

// Storage is the configured storage (nil when none).
func (s *Service) Storage() storage.Storage { return s.storage }

// ErrNoStorage: no --backup-storage-implementation was given.
var ErrNoStorage = errors.New("no backup storage configured: set --backup-storage-implementation (file or s3) and its root")

// BackupRequest names the backup to take.
type BackupRequest struct {
	Keyspace, Shard string
	Alias           *topodatapb.TabletAlias
	Engine          string // overrides Config.Engine when set (BackupRequest.backup_engine)
	Source          Source
	Log             Logf
}

// TryLock claims the service for one backup or restore: ErrInProgress when one is running.
func (s *Service) TryLock(what string) (unlock func(), err error) {
	if !s.busy.TryLock() {
		s.mu.Lock()
		cur := s.running
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrInProgress, cur)
	}
	s.mu.Lock()
	s.running = what
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.running = ""
		s.mu.Unlock()
		s.busy.Unlock()
	}, nil
}

func (s *Service) engineFor(name string, flavor replication.Flavor) (string, error) {
	if name == "" {
		name = s.cfg.Engine
	}
	switch name {
	case "":
		if flavor.IsMariaDB() {
			return EngineMariabackup, nil
		}
		return EngineXtrabackup, nil
	case EngineMariabackup:
		if !flavor.IsMariaDB() {
			return "", fmt.Errorf("backup engine mariabackup is for MariaDB; this server is %s: use xtrabackup", flavor)
		}
		return name, nil
	case EngineXtrabackup:
		return name, nil
	}
	return "", fmt.Errorf("backup engine %q is unknown: use mariabackup or xtrabackup", name)
}

// Backup takes an online backup of req.Source into the storage: the tool's stream is
// compressed and stored as it comes (no local copy), the MANIFEST last. On any failure
// what was stored is removed, so a failed backup never looks complete. The caller holds
// TryLock.
func (s *Service) Backup(ctx context.Context, req BackupRequest) (*Manifest, error) {
	begin := s.now()
	m, err := s.backup(ctx, req, begin)
	s.finish(&s.lastBackup, "backup", begin, m, err)
	if err != nil {
		s.metrics.failures.WithLabelValues("backup").Inc()
		return nil, err
	}
	s.metrics.bytes.WithLabelValues("backup").Add(float64(storedSize(m)))
	s.metrics.duration.WithLabelValues("backup").Observe(s.now().Sub(begin).Seconds())
	return m, nil
}

func (s *Service) backup(ctx context.Context, req BackupRequest, begin time.Time) (*Manifest, error) {
	if s.storage == nil {
		return nil, ErrNoStorage
	}
	src := req.Source
	engine, err := s.engineFor(req.Engine, src.Info.Flavor)
	if err != nil {
		return nil, err
	}
	t, err := findTools(src.Info.Flavor, s.cfg.ToolRootPath)
	if err != nil {
		return nil, err
	}
	var dataDir string
	if err := src.DB.QueryRowContext(ctx, "SELECT @@datadir").Scan(&dataDir); err != nil {
		return nil, fmt.Errorf("reading @@datadir: %w", err)
	}
	dir := req.Keyspace + "/" + req.Shard
	if err := s.storage.Check(ctx); err != nil {
		return nil, err
	}
	s.removeStale(ctx, dir, req.Alias, req.Log)
	name := BackupName(begin, req.Alias)
	m := &Manifest{BackupName: name, BackupMethod: engine, BackupTime: begin.UTC().Format(time.RFC3339),
		ServerUUID: src.Info.ServerUUID, TabletAlias: AliasString(req.Alias), Keyspace: req.Keyspace, Shard: req.Shard,
		MySQLVersion: src.Info.VersionString, StreamMode: s.cfg.StreamMode, Flavor: flavorOf("", src.Info.VersionString),
		DataSize: dirSize(dataDir)}
	comp := s.cfg.compression()
	m.CompressionEngine, m.SkipCompress = comp.engine, comp.engine == ""
	m.FileName = "backup." + s.cfg.StreamMode + compressionExt(comp.engine)
	names := stripeNames(m.FileName, s.cfg.Stripes)
	if len(names) > 1 {
		m.NumStripes, m.StripeBlockSize = int32(len(names)), int32(s.cfg.StripeBlockSize)
	}
	req.Log(Info, "Starting backup %s of %s with engine %s (%s), into %s", name, AliasString(req.Alias), engine, filepath.Base(t.backup), s.storage.Describe())
	w, err := s.storage.StartBackup(ctx, dir, name)
	if err != nil {
		return nil, err
	}
	if err := s.runTool(ctx, w, t, src, dataDir, names, m, req.Log); err != nil {
		abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if aerr := w.Abort(abortCtx); aerr != nil {
			req.Log(Warning, "could not remove the failed backup %s: %v", name, aerr)
		}
		cancel()
		return nil, err
	}
	m.FinishedTime = s.now().UTC().Format(time.RFC3339)
	if err := writeManifest(ctx, w, m); err != nil {
		_ = w.Abort(context.WithoutCancel(ctx))
		return nil, err
	}
	req.Log(Info, "Backup %s complete: position %s, %d bytes stored in %d file(s), %v", name, m.Position,
		storedSize(m), len(m.Stripes), s.now().Sub(begin).Round(time.Millisecond))
	return m, nil
}

// runTool runs the backup tool and stores its stream; it fills m.Position and m.Stripes.
func (s *Service) runTool(ctx context.Context, w storage.Writer, t tools, src Source, dataDir string, names []string, m *Manifest, logf Logf) error {
	tmp, err := os.MkdirTemp(s.cfg.TempDir, "tabletd-backup-")
	if err != nil {
		return fmt.Errorf("creating the tool's work directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	cnf, err := toolCnf(tmp, t, src, dataDir)
	if err != nil {
		return fmt.Errorf("writing the tool's defaults file: %w", err)
	}
	lsn := filepath.Join(tmp, "lsn")
	if err := os.Mkdir(lsn, 0o700); err != nil {
		return err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := newToolRun(tctx, t.backup, "--defaults-file="+cnf, "--backup", "--stream="+s.cfg.StreamMode,
		"--target-dir="+filepath.Join(tmp, "target"), "--extra-lsndir="+lsn, "--slave-info")
	out, err := run.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := run.cmd.Start(); err != nil {
		return run.err("starting the backup tool", err)
	}
	growPipe(out) // fewer, larger reads of the tool's stream
	logf(Info, "Backup tool %s running (pid %d), datadir %s (%d bytes)", filepath.Base(t.backup), run.cmd.Process.Pid, dataDir, m.DataSize)
	var read atomicInt64
	stopProgress := s.progress(ctx, "backup", &read, m.DataSize, logf)
	// A storage failure kills the tool at once (cancel): the reader of its output may be
	// blocked on it, and nothing will store what it writes.
	stripes, serr := writeStriped(tctx, w, names, s.cfg.StripeBlockSize, s.cfg.compression(), countingReader{r: out, n: &read}, cancel)
	stopProgress()
	if serr != nil {
		cancel()
		_, _ = io.Copy(io.Discard, out)
	}
	werr := run.cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("backup cancelled: %w", ctx.Err())
	case serr != nil: // before werr: the tool was killed because of it
		return fmt.Errorf("storing the backup stream: %w", serr)
	case werr != nil:
		logf(Warning, "Backup tool output (last lines):\n%s", run.tail.last(15))
		return run.err("backup tool", werr)
	}
	pos, err := readToolPosition(lsn, src.Info.Flavor)
	if err != nil {
		return fmt.Errorf("reading the backup's position: %w", err)
	}
	m.Position, m.Stripes = pos.String(), stripes
	logf(Info, "Backup stream done: %d bytes read from the tool, position %s", read.Load(), m.Position)
	return nil
}

func writeManifest(ctx context.Context, w storage.Writer, m *Manifest) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	f, err := w.AddFile(ctx, ManifestFile, int64(len(b)))
	if err != nil {
		return fmt.Errorf("writing the MANIFEST: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the MANIFEST: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the MANIFEST: %w", err)
	}
	return nil
}

// removeStale deletes this tablet's earlier backups that never got a MANIFEST (tabletd was
// killed mid-backup): only one backup per tablet runs at a time, so none of them is running.
func (s *Service) removeStale(ctx context.Context, dir string, alias *topodatapb.TabletAlias, logf Logf) {
	names, err := s.storage.ListBackups(ctx, dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if _, a, err := ParseBackupName(n); err != nil || a != AliasString(alias) {
			continue
		}
		if _, err := s.readManifest(ctx, dir, n); errors.Is(err, storage.ErrNotFound) {
			if err := s.storage.RemoveBackup(ctx, dir, n); err == nil {
				logf(Info, "Removed incomplete backup %s (no MANIFEST: an earlier backup was interrupted)", n)
			}
		}
	}
}

func (s *Service) readManifest(ctx context.Context, dir, name string) (*Manifest, error) {
	r, err := s.storage.ReadFile(ctx, dir, name, ManifestFile)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	return decodeManifest(b)
}

// progress logs bytes, percent and throughput every ProgressInterval until stopped.
func (s *Service) progress(ctx context.Context, what string, n *atomicInt64, total int64, logf Logf) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	begin := s.now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(s.cfg.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				b := n.Load()
				secs := s.now().Sub(begin).Seconds()
				pct := ""
				if total > 0 {
					pct = fmt.Sprintf(" (%.0f%% of the datadir's %d bytes)", min(99.0, 100*float64(b)/float64(total)), total)
				}
				logf(Info, "%s progress: %d bytes%s, %.1f MB/s", what, b, pct, float64(b)/1e6/max(secs, 0.001))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// dirSize is the bytes of regular files under dir (0 when unreadable).
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

func storedSize(m *Manifest) int64 {
	if m == nil {
		return 0
	}
	var n int64
	for _, s := range m.Stripes {
		n += s.Size
	}
	return n
}

type atomicInt64 = atomic.Int64
