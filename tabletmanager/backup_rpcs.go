package tabletmanager

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/backup"
	"github.com/tabletd/tabletd/backup/mysqlctl"
	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/proto/logutilpb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/proto/vttimepb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// BackupDeps wires backups and restores into the manager.
type BackupDeps struct {
	Service *backup.Service
	// Controller stops and starts mysqld for restores (--mycnf-file, --mysqlctl-socket);
	// nil: restores refuse, naming both flags.
	Controller mysqlctl.Controller
	// Tool connection: how the backup tool reaches MySQL (socket, else host:port) and as whom.
	Socket, Host   string
	Port           int
	User, Password string
	// RestoreOnStart (--restore-from-backup): restore at start when the database is absent
	// or a restore was interrupted.
	RestoreOnStart bool
	RestoreTime    time.Time     // --restore-from-backup-ts
	WaitForBackup  time.Duration // --wait-for-backup-interval: 0 = start empty when none
	AllowedEngines []string      // --restore-from-backup-allowed-engines
	// CatchUpTimeout bounds waiting, after a restore, for the shard primary's position.
	CatchUpTimeout time.Duration
}

// eventLog turns backup events into logutil events on send and the tablet's log; a client
// that went away does not stop the work (its context does).
func (m *Manager) eventLog(send func(*logutilpb.Event) error) backup.Logf {
	var mu sync.Mutex // a gRPC stream's Send must not be called concurrently (progress ticks)
	return func(level backup.Level, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		_, file, line, _ := runtime.Caller(1)
		ev := &logutilpb.Event{Time: timeToProto(m.now()), Level: logutilpb.Level(level), File: file[strings.LastIndex(file, "/")+1:],
			Line: int64(line), Value: msg}
		switch level {
		case backup.Error:
			m.log.Error(msg)
		case backup.Warning:
			m.log.Warn(msg)
		default:
			m.log.Info(msg)
		}
		if send != nil {
			mu.Lock()
			_ = send(ev)
			mu.Unlock()
		}
	}
}

// backupErr gives the backup package's errors their vtrpc codes.
func backupErr(err error) error {
	var re *rpcerr.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return rpcerr.Wrap(rpcerr.Code(err), err, "%s", "backup")
	case errors.Is(err, backup.ErrCorrupt):
		return rpcerr.Wrap(vtrpcpb.Code_DATA_LOSS, err, "%s", "restore refused")
	case errors.Is(err, backup.ErrNoBackup), errors.Is(err, backup.ErrNoFit), errors.Is(err, storage.ErrNotFound):
		return rpcerr.Wrap(vtrpcpb.Code_NOT_FOUND, err, "%s", "restore")
	case errors.Is(err, backup.ErrInProgress), errors.Is(err, backup.ErrNoStorage), errors.Is(err, backup.ErrNotManaged),
		errors.Is(err, backup.ErrToolMissing), errors.Is(err, storage.ErrUnusable), errors.Is(err, storage.ErrInvalidName):
		return rpcerr.Wrap(vtrpcpb.Code_FAILED_PRECONDITION, err, "%s", "backup")
	}
	return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "%s", "backup")
}

// Backup takes an online backup (mariabackup / xtrabackup streamed into the storage): the
// tablet keeps its type and keeps serving, replication keeps running, so whatever fails the
// tablet is as it was; the error ends the stream, and no MANIFEST is written. A PRIMARY
// refuses unless allowPrimary; one backup or restore at a time.
func (m *Manager) Backup(ctx context.Context, req *tmpb.BackupRequest, send func(*logutilpb.Event) error) error {
	b := m.backup
	if b == nil || b.Service == nil {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "%v", backup.ErrNoStorage)
	}
	if req.IncrementalFromPos != "" {
		return rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "incremental backups are not supported by tabletd (incremental_from_pos %q)", req.IncrementalFromPos)
	}
	t := m.Tablet()
	if t.Type == topodatapb.TabletType_PRIMARY && !req.AllowPrimary {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"type PRIMARY cannot take backup. if you really need to do this, rerun the backup command with --allow_primary")
	}
	unlock, err := b.Service.TryLock("backup of " + topoAlias(m.cfg.Alias))
	if err != nil {
		return backupErr(err)
	}
	defer unlock()
	logf := m.eventLog(send)
	info, err := m.mysql.Info(ctx)
	if err != nil {
		logf(backup.Error, "Backup failed: cannot reach MySQL: %v", err)
		return mysqlErr(err, "cannot reach MySQL")
	}
	src := backup.Source{DB: m.mysql.DB(), Info: info, Socket: b.Socket, Host: b.Host, Port: b.Port, User: b.User, Password: b.Password}
	if src.Socket == "" {
		var sock string
		if err := src.DB.QueryRowContext(ctx, "SELECT @@socket").Scan(&sock); err == nil && isLocal(b.Host) {
			src.Socket = sock
		}
	}
	_, err = b.Service.Backup(ctx, backup.BackupRequest{Keyspace: m.cfg.Keyspace, Shard: m.cfg.Shard, Alias: m.cfg.Alias,
		Engine: req.GetBackupEngine(), Source: src, Log: logf})
	if err != nil {
		logf(backup.Error, "Backup failed: %v", err)
		return backupErr(err)
	}
	return nil
}

func isLocal(host string) bool {
	return host == "" || host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// RestoreFromBackup replaces this tablet's data with the newest fitting backup (vtctld's
// RestoreFromBackup): the type is RESTORE meanwhile and returns to what it was whatever
// happens; at the end the tablet replicates from the shard primary.
func (m *Manager) RestoreFromBackup(ctx context.Context, req *tmpb.RestoreFromBackupRequest, send func(*logutilpb.Event) error) error {
	b := m.backup
	if b == nil || b.Service == nil {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "%v", backup.ErrNoStorage)
	}
	if req.RestoreToPos != "" || !optionalTime(req.RestoreToTimestamp).IsZero() {
		return rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "point-in-time restores are not supported by tabletd")
	}
	if m.Tablet().Type == topodatapb.TabletType_PRIMARY {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"type PRIMARY cannot restore from backup, if you really need to do this, restart the tablet in replica mode")
	}
	if m.connectedTopo() == nil { // checked before anything changes: the restore ends by finding the primary there
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the tablet is not registered in the topology yet: try again")
	}
	unlock, err := b.Service.TryLock("restore of " + topoAlias(m.cfg.Alias))
	if err != nil {
		return backupErr(err)
	}
	defer unlock()
	logf := m.eventLog(send)
	rr := backup.RestoreRequest{Keyspace: m.cfg.Keyspace, Shard: m.cfg.Shard, AllowedEngines: req.AllowedBackupEngines,
		DryRun: req.DryRun, BackupTime: optionalTime(req.BackupTime), Log: logf}
	m.action.Lock()
	defer m.action.Unlock()
	if err := m.restoreLocked(ctx, rr); err != nil {
		logf(backup.Error, "Restore failed: %v", err)
		return err
	}
	return nil
}

// restoreLocked runs one restore with the action lock held: RESTORE while it runs, the base
// type again afterwards (also after a failure: a tablet is never left in RESTORE).
func (m *Manager) restoreLocked(ctx context.Context, rr backup.RestoreRequest) error {
	b := m.backup
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	rr.Flavor, rr.Controller = flavor, b.Controller
	if rr.DryRun {
		_, err := b.Service.Restore(ctx, rr)
		return backupErr(err)
	}
	if _, err := b.Service.FindBackup(ctx, rr); err != nil {
		return backupErr(err) // nothing changed yet: no RESTORE type for a restore that cannot start
	}
	base := m.Tablet().Type
	if base == topodatapb.TabletType_RESTORE || base == topodatapb.TabletType_BACKUP {
		base = m.cfg.InitType
	}
	if err := m.changeTypeLocked(ctx, topodatapb.TabletType_RESTORE); err != nil {
		return err
	}
	defer func() {
		if err := m.changeTypeLocked(context.WithoutCancel(ctx), base); err != nil {
			m.log.Error("cannot return to the base type after a restore", zap.Stringer("type", base), zap.Error(err))
		}
	}()
	stopped := false
	rr.BeforeStop = func(ctx context.Context) error {
		// A server about to be replaced must not apply more.
		m.setReplStopped(true)
		stopped = true
		return mysqlErr(replication.StopReplication(ctx, db, flavor), "cannot stop replication before the restore")
	}
	rr.AfterStart = func(ctx context.Context, man *backup.Manifest) error {
		return m.setRestoredPosition(ctx, man)
	}
	man, err := b.Service.Restore(ctx, rr)
	if err != nil {
		if stopped {
			// Never leave replication stopped by a failed restore: start it again, or leave it
			// to the replication reporter when mysqld is not back yet.
			m.setReplStopped(false)
			_ = replication.StartReplication(context.WithoutCancel(ctx), db, flavor)
		}
		return backupErr(err)
	}
	rr.Log(backup.Info, "Restored backup %s at position %s", man.BackupName, man.Position)
	begin := m.now()
	if err := m.replicateFromPrimaryLocked(ctx, rr.Log); err != nil {
		b.Service.RestoreFailed(err)
		return err
	}
	b.Service.AddRestorePhase("catch-up", m.now().Sub(begin))
	return nil
}

// setRestoredPosition makes the restored server's position the MANIFEST's (MariaDB: RESET
// MASTER, gtid_slave_pos; MySQL: gtid_purged), with no replication source yet.
func (m *Manager) setRestoredPosition(ctx context.Context, man *backup.Manifest) error {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	pos, err := parsePosition(man.Position, flavor)
	if err != nil {
		return err
	}
	if err := replication.ResetReplicationParameters(ctx, db, flavor); err != nil {
		return mysqlErr(err, "cannot reset replication on the restored server")
	}
	if err := replication.SetReplicationPosition(ctx, db, flavor, pos); err != nil {
		return mysqlErr(err, "cannot set the restored position "+man.Position)
	}
	return nil
}

// replicateFromPrimaryLocked points replication at the shard's primary and waits (at most
// CatchUpTimeout) until this server has the primary's position of now. No primary: nothing
// to do (the tablet waits to be reparented).
func (m *Manager) replicateFromPrimaryLocked(ctx context.Context, logf backup.Logf) error {
	ts := m.connectedTopo()
	if ts == nil {
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the topology is not reachable yet")
	}
	shard, err := ts.GetShard(ctx, m.cfg.Keyspace, m.cfg.Shard)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot read the shard record")
	}
	if shard.PrimaryAlias == nil || proto3Equal(shard.PrimaryAlias, m.cfg.Alias) {
		logf(backup.Info, "The shard has no primary: replication is left unconfigured")
		return nil
	}
	src, err := m.sourceOf(ctx, shard.PrimaryAlias)
	if err != nil {
		return err
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if err := m.replicateFromLocked(ctx, db, flavor, shard.PrimaryAlias, src, nil); err != nil {
		return err
	}
	logf(backup.Info, "Replicating from the shard primary %s (%s:%d)", topoAlias(shard.PrimaryAlias), src.Host, src.Port)
	srcDB, err := openSource(src)
	if err != nil {
		return nil
	}
	defer srcDB.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	target, err := replication.PrimaryPosition(pctx, srcDB, flavor)
	cancel()
	if err != nil {
		logf(backup.Warning, "Cannot read the primary's position (%v): not waiting to catch up", err)
		return nil
	}
	wait := m.backup.CatchUpTimeout
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := replication.WaitForPosition(wctx, db, flavor, target); err != nil {
		return mysqlErr(err, fmt.Sprintf("the restored tablet did not catch up with the primary's position %s", target))
	}
	logf(backup.Info, "Caught up with the primary's position %s", target)
	return nil
}

// RestoreOnStart is --restore-from-backup: once the tablet is registered and MySQL answers,
// it restores when the tablet's database is absent or an earlier restore was interrupted.
// With no backup at all it starts empty (after --wait-for-backup-interval retries, when set),
// as vttablet does. It returns when the tablet serves its base type again, or ctx ends.
func (m *Manager) RestoreOnStart(ctx context.Context) error {
	b := m.backup
	if b == nil || !b.RestoreOnStart {
		return nil
	}
	if err := m.waitReady(ctx); err != nil {
		return err
	}
	need, why, err := m.shouldRestore(ctx)
	if err != nil {
		return err
	}
	if !need {
		m.log.Info("restore on start: not needed", zap.String("why", why))
		return nil
	}
	m.log.Info("restore on start", zap.String("why", why))
	logf := m.eventLog(nil)
	rr := backup.RestoreRequest{Keyspace: m.cfg.Keyspace, Shard: m.cfg.Shard, BackupTime: b.RestoreTime,
		AllowedEngines: b.AllowedEngines, Log: logf}
	for {
		unlock, err := b.Service.TryLock("restore on start of " + topoAlias(m.cfg.Alias))
		if err != nil {
			return backupErr(err)
		}
		m.action.Lock()
		err = m.restoreLocked(ctx, rr)
		m.action.Unlock()
		unlock()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, backup.ErrNoBackup) && b.WaitForBackup > 0:
			logf(backup.Info, "No backup yet; looking again in %v (--wait-for-backup-interval)", b.WaitForBackup)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(b.WaitForBackup):
			}
		case errors.Is(err, backup.ErrNoBackup):
			logf(backup.Info, "No backup to restore: starting empty")
			m.action.Lock()
			defer m.action.Unlock()
			return m.replicateFromPrimaryLocked(ctx, logf)
		default:
			b.Service.RestoreFailed(err)
			return err
		}
	}
}

// waitReady waits until the tablet is registered and MySQL answers.
func (m *Manager) waitReady(ctx context.Context) error {
	for {
		if m.connectedTopo() != nil {
			if _, _, err := m.server(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.cfg.RetryInterval):
		}
	}
}

// shouldRestore is vttablet's ShouldRestore: a restore-in-progress marker, or the tablet's
// database missing from SHOW DATABASES.
func (m *Manager) shouldRestore(ctx context.Context) (bool, string, error) {
	if c := m.backup.Controller; c != nil && backup.MarkerExists(c.DataDir()) {
		return true, "an earlier restore was interrupted (" + backup.MarkerPath(c.DataDir()) + " exists)", nil
	}
	dbName := m.cfg.DBNameOverride
	if dbName == "" {
		dbName = "vt_" + m.cfg.Keyspace
	}
	db, _, err := m.server(ctx)
	if err != nil {
		return false, "", err
	}
	rows, err := db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return false, "", mysqlErr(err, "SHOW DATABASES")
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return false, "", mysqlErr(err, "SHOW DATABASES")
		}
		if n == dbName {
			return false, "database " + dbName + " exists", nil
		}
	}
	return true, "database " + dbName + " does not exist", rows.Err()
}

// BackupStatus is the last backup and restore, for /debug/status (nil: no backups configured).
func (m *Manager) BackupStatus() *backup.Status {
	if m.backup == nil || m.backup.Service == nil {
		return nil
	}
	st := m.backup.Service.Status()
	return &st
}

// optionalTime reads a vttime that vtctld sends for "not given" as either all zeros or Go's
// zero time (0001-01-01, which is what vtctldclient's unset flag converts to).
func optionalTime(t *vttimepb.Time) time.Time {
	if t == nil || (t.Seconds == 0 && t.Nanoseconds == 0) {
		return time.Time{}
	}
	v := timeFromProto(t).UTC()
	if v.IsZero() {
		return time.Time{}
	}
	return v
}
