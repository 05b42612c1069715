package tablet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/backup"
	"github.com/tabletd/tabletd/backup/mysqlctl"
	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/tabletmanager"
)

// BackupConfig configures backups, restores and restore on start (vttablet's flags).
type BackupConfig struct {
	// StorageImplementation is --backup-storage-implementation: "" (no backups), file or s3.
	StorageImplementation string
	FileRoot              string // --file-backup-storage-root
	S3                    storage.S3Config
	Engine                backup.Config
	// MyCnfFile (--mycnf-file) lets tabletd stop and start mysqld for restores.
	MyCnfFile string
	// MysqlctlSocket (--mysqlctl-socket) names a mysqlctld; not implemented yet.
	MysqlctlSocket string
	RestoreOnStart bool          // --restore-from-backup
	RestoreTime    time.Time     // --restore-from-backup-ts
	WaitForBackup  time.Duration // --wait-for-backup-interval
	AllowedEngines []string      // --restore-from-backup-allowed-engines
	CatchUpTimeout time.Duration
}

// DefaultBackupConfig returns the defaults: no storage, zstd level 1.
func DefaultBackupConfig() BackupConfig {
	return BackupConfig{S3: storage.DefaultS3Config(), Engine: backup.DefaultConfig(), CatchUpTimeout: 10 * time.Minute}
}

// Validate reports the first unusable setting, naming its flag.
func (c BackupConfig) Validate() error {
	switch c.StorageImplementation {
	case "":
		if c.RestoreOnStart {
			return errors.New("--restore-from-backup needs --backup-storage-implementation (file or s3)")
		}
	case "file":
		if c.FileRoot == "" {
			return errors.New("--backup-storage-implementation file needs --file-backup-storage-root")
		}
	case "s3":
		if err := c.S3.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--backup-storage-implementation %q is not supported: use file or s3", c.StorageImplementation)
	}
	return c.Engine.Validate()
}

// openBackup builds the backup service and what the tablet manager needs for restores.
func (t *Tablet) openBackup(ctx context.Context) error {
	c := t.cfg.Backup
	if c.StorageImplementation == "" {
		return nil
	}
	var st storage.Storage
	var err error
	switch c.StorageImplementation {
	case "file":
		st, err = storage.NewFile(c.FileRoot)
	case "s3":
		st, err = storage.NewS3(ctx, c.S3)
	}
	if err != nil {
		return err
	}
	if err := st.Check(ctx); err != nil {
		// Not fatal: the storage may be mounted or reachable later; each backup checks again.
		t.log.Warn("backup storage not usable now", zap.Error(err))
	}
	ec := c.Engine
	dba := t.cfg.DB.Users[dbconfig.Dba]
	user, password := ec.ToolUser, ec.ToolPassword
	if user == "" {
		user, password = dba.User, dba.Password
	}
	svc, err := backup.New(ec, backup.Deps{Log: t.log, Registry: t.reg, Clock: t.now, Storage: st})
	if err != nil {
		return err
	}
	d := &tabletmanager.BackupDeps{Service: svc, Socket: t.cfg.DB.Socket, Host: t.cfg.DB.Host, Port: t.cfg.DB.Port,
		User: user, Password: password, RestoreOnStart: c.RestoreOnStart, RestoreTime: c.RestoreTime,
		WaitForBackup: c.WaitForBackup, AllowedEngines: c.AllowedEngines, CatchUpTimeout: c.CatchUpTimeout}
	if c.MyCnfFile != "" {
		cnf, err := mysqlctl.ReadMyCnf(c.MyCnfFile)
		if err != nil {
			return err
		}
		ctl, err := mysqlctl.NewLocal(cnf, "", t.mysql.DB())
		if err != nil {
			return err
		}
		d.Controller = ctl
	} else if c.MysqlctlSocket != "" {
		t.log.Warn("--mysqlctl-socket is accepted but tabletd does not speak to mysqlctld yet: restores need --mycnf-file")
	}
	t.backupDeps = d
	t.onClose("backup storage", func(context.Context) { _ = st.Close() })
	return nil
}

// startRestore runs restore on start in the background (the tablet is registered and its
// HTTP and gRPC servers answer meanwhile, as RESTORE); its closer cancels and waits.
func (t *Tablet) startRestore(context.Context) error {
	if t.backupDeps == nil || !t.backupDeps.RestoreOnStart {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := t.tm.RestoreOnStart(ctx); err != nil && ctx.Err() == nil {
			t.log.Error("restore on start failed; the tablet stays empty", zap.Error(err))
		}
	}()
	t.onClose("restore on start", func(context.Context) { cancel(); <-done })
	return nil
}

// backupView is the backup section of /debug/status.
func backupView(st *backup.Status) *httpserver.BackupView {
	if st == nil {
		return nil
	}
	run := func(r backup.Result) httpserver.BackupRun {
		out := httpserver.BackupRun{Name: r.Name, Engine: r.Engine, Position: r.Position, Size: r.Size, Started: r.Started,
			Duration: r.Duration.Round(time.Millisecond), Err: r.Err}
		var phases []string
		for _, p := range r.Phases {
			phases = append(phases, fmt.Sprintf("%s %v", p.Name, p.Duration.Round(time.Millisecond)))
		}
		out.Phases = strings.Join(phases, ", ")
		return out
	}
	return &httpserver.BackupView{Storage: st.Storage, Running: st.Running, LastBackup: run(st.LastBackup), LastRestore: run(st.LastRestore)}
}
