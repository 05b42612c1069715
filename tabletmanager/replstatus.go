package tabletmanager

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/replicationdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// Replication state values of replicationdata.Status io_state / sql_state (Vitess's
// replication.ReplicationState).
const (
	replStateUnknown    int32 = 0
	replStateStopped    int32 = 1
	replStateConnecting int32 = 2
	replStateRunning    int32 = 3
)

// ReplicationStatus reports the replica's status; a server without replication answers
// vttablet's "no replication status (errno 100)".
func (m *Manager) ReplicationStatus(ctx context.Context) (*replicationdatapb.Status, error) {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return nil, mysqlErr(err, "cannot read the replication status")
	}
	if !st.Configured {
		return nil, errNotReplica
	}
	return statusProto(st), nil
}

// statusProto converts a status to Vitess's message. The relay-log position of a MariaDB
// replica is Gtid_IO_Pos merged with gtid_slave_pos (vttablet leaves it empty, which makes ERS
// wait on file coordinates MariaDB cannot serve).
func statusProto(st replication.Status) *replicationdatapb.Status {
	p := &replicationdatapb.Status{
		Position:                               st.Position.String(),
		RelayLogPosition:                       st.RelayLogPosition.String(),
		FilePosition:                           st.FilePosition.String(),
		RelayLogSourceBinlogEquivalentPosition: st.RelayLogSourceBinlogEquivalentPosition.String(),
		SourceHost:                             st.SourceHost,
		SourcePort:                             int32(st.SourcePort),
		SourceUser:                             st.SourceUser,
		SourceServerId:                         st.SourceServerID,
		SourceUuid:                             st.SourceUUID,
		ConnectRetry:                           int32(st.ConnectRetry / time.Second),
		IoState:                                ioState(st),
		SqlState:                               sqlState(st),
		LastIoError:                            st.LastIOError,
		LastSqlError:                           st.LastSQLError,
		SqlDelay:                               uint32(st.SQLDelay / time.Second),
		AutoPosition:                           st.UsingGTID,
		UsingGtid:                              st.UsingGTID,
		ReplicationLagUnknown:                  !st.LagKnown,
	}
	if st.LagKnown {
		p.ReplicationLagSeconds = uint32(st.Lag / time.Second)
	}
	return p
}

func ioState(st replication.Status) int32 {
	switch {
	case !st.Configured:
		return replStateUnknown
	case st.IOThreadRunning:
		return replStateRunning
	case strings.EqualFold(st.IOThreadState, "Connecting"):
		return replStateConnecting
	}
	return replStateStopped
}

func sqlState(st replication.Status) int32 {
	switch {
	case !st.Configured:
		return replStateUnknown
	case st.SQLThreadRunning:
		return replStateRunning
	}
	return replStateStopped
}

func primaryStatusProto(st replication.PrimaryStatus) *replicationdatapb.PrimaryStatus {
	return &replicationdatapb.PrimaryStatus{Position: st.Position.String(), FilePosition: st.FilePosition.String(), ServerUuid: st.ServerUUID}
}

// PrimaryStatus reports what this server wrote to its binary log.
func (m *Manager) PrimaryStatus(ctx context.Context) (*replicationdatapb.PrimaryStatus, error) {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	st, err := replication.ReadPrimaryStatus(ctx, db, flavor)
	if err != nil {
		return nil, mysqlErr(err, "cannot read the primary status")
	}
	p := primaryStatusProto(st)
	if info, err := m.mysql.Info(ctx); err == nil {
		p.ServerUuid = serverUUID(info)
	}
	return p, nil
}

// serverUUID is @@server_uuid on MySQL. MariaDB has none; a Vitess vttablet re-pointed at
// this tablet parses the primary's server_uuid before its (MySQL-only) errant GTID check and
// fails on an empty one ("invalid MySQL 5.6 SID"), so on MariaDB tabletd reports a UUID
// derived from server_id: stable, unique in a shard (server_ids must be), and never a real
// MySQL UUID (its first three groups are zero).
func serverUUID(info replication.ServerInfo) string {
	if info.ServerUUID != "" || !info.Flavor.IsMariaDB() {
		return info.ServerUUID
	}
	return fmt.Sprintf("00000000-0000-0000-0000-%012x", info.ServerID)
}

// PrimaryPosition is the position of everything in this server's binary log.
func (m *Manager) PrimaryPosition(ctx context.Context) (string, error) {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return "", err
	}
	pos, err := replication.PrimaryPosition(ctx, db, flavor)
	if err != nil {
		return "", mysqlErr(err, "cannot read the primary position")
	}
	return pos.String(), nil
}

// WaitForPosition returns once this server has applied position, or fails when ctx ends.
func (m *Manager) WaitForPosition(ctx context.Context, position string) error {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	pos, err := parsePosition(position, flavor)
	if err != nil {
		return err
	}
	if err := replication.WaitForPosition(ctx, db, flavor, pos); err != nil {
		return mysqlErr(err, fmt.Sprintf("waiting for position %s", position))
	}
	return nil
}

// StopReplication stops both replication threads; the reporter then leaves them stopped.
func (m *Manager) StopReplication(ctx context.Context) error {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	defer m.qs.RunHealthCheck()
	if err := replication.StopReplication(ctx, db, flavor); err != nil {
		return mysqlErr(err, "cannot stop replication")
	}
	m.setReplStopped(true) // the action lock keeps the reporter out until it is recorded
	return nil
}

// StopReplicationMinimum lets replication reach position (within waitTimeout), stops it and
// returns where it stopped.
func (m *Manager) StopReplicationMinimum(ctx context.Context, position string, waitTimeout time.Duration) (string, error) {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return "", err
	}
	pos, err := parsePosition(position, flavor)
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	err = replication.WaitForPosition(wctx, db, flavor, pos)
	cancel()
	if err != nil {
		return "", mysqlErr(err, fmt.Sprintf("waiting for position %s", position))
	}
	if err := replication.StopReplication(ctx, db, flavor); err != nil {
		return "", mysqlErr(err, "cannot stop replication")
	}
	m.setReplStopped(true)
	m.qs.RunHealthCheck()
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return "", mysqlErr(err, "cannot read the replication status")
	}
	return st.Position.String(), nil
}

// StartReplication starts replication with the semi-sync settings asked for.
func (m *Manager) StartReplication(ctx context.Context, semiSync bool) error {
	return m.startReplication(ctx, semiSync, false)
}

// RestartReplication stops and starts replication.
func (m *Manager) RestartReplication(ctx context.Context, semiSync bool) error {
	return m.startReplication(ctx, semiSync, true)
}

func (m *Manager) startReplication(ctx context.Context, semiSync, stopFirst bool) error {
	m.action.Lock()
	defer m.action.Unlock()
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return err
	}
	if err := m.fixSemiSync(ctx, m.Tablet().Type, action); err != nil {
		return err
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if stopFirst {
		if err := replication.StopReplication(ctx, db, flavor); err != nil {
			return mysqlErr(err, "cannot stop replication")
		}
	}
	if err := replication.StartReplication(ctx, db, flavor); err != nil {
		return mysqlErr(err, "cannot start replication")
	}
	m.setReplStopped(false)
	m.qs.RunHealthCheck()
	return nil
}

// StartReplicationUntilAfter runs replication until just after position, within waitTimeout.
func (m *Manager) StartReplicationUntilAfter(ctx context.Context, position string, waitTimeout time.Duration) error {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	pos, err := parsePosition(position, flavor)
	if err != nil {
		return err
	}
	if err := replication.StartReplicationUntilAfter(ctx, db, flavor, pos); err != nil {
		return mysqlErr(err, "cannot start replication until "+position)
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	return mysqlErr(replication.WaitForPosition(wctx, db, flavor, pos), "waiting for position "+position)
}

// StopReplicationAndGetStatus stops replication (only the I/O thread in ERS's IOTHREADONLY
// mode, so the relay log is still applied) and returns the status before and after.
func (m *Manager) StopReplicationAndGetStatus(ctx context.Context, mode replicationdatapb.StopReplicationMode) (*replicationdatapb.StopReplicationStatus, error) {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return nil, mysqlErr(err, "before status failed")
	}
	if !st.Configured {
		return nil, errNotReplica
	}
	before := statusProto(st)
	ioOnly := mode == replicationdatapb.StopReplicationMode_IOTHREADONLY
	if (ioOnly && !st.IOThreadRunning) || (!ioOnly && !st.IOThreadRunning && !st.SQLThreadRunning) {
		return &replicationdatapb.StopReplicationStatus{Before: before, After: before}, nil
	}
	stop := replication.StopReplication
	if ioOnly {
		stop = replication.StopIOThread
	}
	if err := stop(ctx, db, flavor); err != nil {
		return &replicationdatapb.StopReplicationStatus{Before: before}, mysqlErr(err, "stop replication failed")
	}
	m.setReplStopped(true)
	m.qs.RunHealthCheck()
	after, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return &replicationdatapb.StopReplicationStatus{Before: before}, mysqlErr(err, "acquiring replication status failed")
	}
	return &replicationdatapb.StopReplicationStatus{Before: before, After: statusProto(after)}, nil
}

// PopulateReparentJournal records a reparent in the sidecar reparent_journal (on the new
// primary; the row replicates, and the replicas wait for it).
func (m *Manager) PopulateReparentJournal(ctx context.Context, timeCreatedNS int64, action string, primary *topodatapb.TabletAlias, position string) error {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if _, err := parsePosition(position, flavor); err != nil {
		return err
	}
	if len(position) > maxJournalPosition {
		position = position[:maxJournalPosition]
	}
	m.mu.Lock()
	q := fmt.Sprintf("INSERT INTO %s.reparent_journal (time_created_ns, action_name, primary_alias, replication_position) VALUES (?, ?, ?, ?)",
		quoteIdent(m.sidecarDB))
	m.mu.Unlock()
	if _, err := db.ExecContext(ctx, q, timeCreatedNS, action, topoAlias(primary), position); err != nil {
		return mysqlErr(err, "cannot write the reparent journal")
	}
	return nil
}

// maxJournalPosition is the width of reparent_journal.replication_position (Vitess's
// MaximumPositionSize): a longer position is cut, as vttablet does.
const maxJournalPosition = 64000

// ReadReparentJournalInfo returns how many reparents the journal holds (ERS ranks candidates by it).
func (m *Manager) ReadReparentJournalInfo(ctx context.Context) (int32, error) {
	db, _, err := m.server(ctx)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	q := "SELECT COUNT(*) FROM " + quoteIdent(m.sidecarDB) + ".reparent_journal"
	m.mu.Unlock()
	var n int32
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, mysqlErr(err, "cannot read the reparent journal")
	}
	return n, nil
}

// lastJournal returns the newest reparent journal row, for the status page.
func (m *Manager) lastJournal(ctx context.Context) (journalRow, error) {
	db, _, err := m.server(ctx)
	if err != nil {
		return journalRow{}, err
	}
	m.mu.Lock()
	q := "SELECT time_created_ns, action_name, primary_alias, replication_position FROM " +
		quoteIdent(m.sidecarDB) + ".reparent_journal ORDER BY time_created_ns DESC LIMIT 1"
	m.mu.Unlock()
	var r journalRow
	var ns int64
	err = db.QueryRowContext(ctx, q).Scan(&ns, &r.Action, &r.Primary, &r.Position)
	if err != nil {
		return journalRow{}, err
	}
	r.At = time.Unix(0, ns)
	return r, nil
}

// journalRow is one reparent_journal row.
type journalRow struct {
	At                        time.Time
	Action, Primary, Position string
}

// GetReplicas lists the hosts replicating from this server (its binlog dump threads).
func (m *Manager) GetReplicas(ctx context.Context) ([]string, error) {
	db, _, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT HOST FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')")
	if err != nil {
		return nil, mysqlErr(err, "cannot list replicas")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var host string
		if err := rows.Scan(&host); err != nil {
			return nil, mysqlErr(err, "cannot list replicas")
		}
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		out = append(out, host)
	}
	return out, mysqlErr(rows.Err(), "cannot list replicas")
}

// GetGlobalStatusVars returns the asked SHOW GLOBAL STATUS variables (all when none is named).
func (m *Manager) GetGlobalStatusVars(ctx context.Context, names []string) (map[string]string, error) {
	db, _, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	vars, err := replication.ReadGlobalStatusVars(ctx, db, names)
	return vars, mysqlErr(err, "cannot read the global status")
}

// FullStatus is everything VTOrc and vtctldclient GetFullStatus read about this MySQL. On
// MariaDB super_read_only is reported as false (there is none), never an error.
func (m *Manager) FullStatus(ctx context.Context) (*replicationdatapb.FullStatus, error) {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	info, err := m.mysql.Info(ctx)
	if err != nil {
		return nil, mysqlErr(err, "cannot reach MySQL")
	}
	fs := &replicationdatapb.FullStatus{ServerId: info.ServerID, ServerUuid: serverUUID(info), VersionComment: info.VersionComment,
		Version: info.Version.String(), GtidMode: info.GTIDMode, SuperReadOnly: info.SuperReadOnly, TabletType: m.Tablet().Type}
	if flavor.IsMariaDB() {
		fs.GtidMode = "ON" // MariaDB's GTIDs cannot be turned off
	}
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return nil, mysqlErr(err, "cannot read the replication status")
	}
	if st.Configured {
		fs.ReplicationStatus = statusProto(st)
		fs.ReplicationConfiguration = &replicationdatapb.Configuration{HeartbeatInterval: st.HeartbeatInterval.Seconds()}
	}
	if ps, err := replication.ReadPrimaryStatus(ctx, db, flavor); err == nil {
		fs.PrimaryStatus = primaryStatusProto(ps)
		fs.PrimaryStatus.ServerUuid = fs.ServerUuid
	}
	if fs.ReadOnly, err = replication.ReadOnly(ctx, db); err != nil {
		return nil, mysqlErr(err, "cannot read read_only")
	}
	if err := fillBinlogSettings(ctx, db, flavor, fs); err != nil {
		return nil, err
	}
	ss, err := replication.ReadSemiSync(ctx, db, flavor)
	if err != nil {
		return nil, mysqlErr(err, "cannot read the semi-sync status")
	}
	fs.SemiSyncPrimaryEnabled, fs.SemiSyncReplicaEnabled = ss.PrimaryEnabled, ss.ReplicaEnabled
	fs.SemiSyncPrimaryStatus, fs.SemiSyncReplicaStatus = ss.PrimaryActive, ss.ReplicaActive
	fs.SemiSyncPrimaryClients = uint32(ss.PrimaryClients)
	fs.SemiSyncPrimaryTimeout = uint64(ss.Timeout / time.Millisecond)
	fs.SemiSyncWaitForReplicaCount = uint32(ss.WaitForReplicaCount)
	fs.SemiSyncBlocked = ss.WaitingSessions > 0
	return fs, nil
}

// fillBinlogSettings reads the binary log settings FullStatus reports.
func fillBinlogSettings(ctx context.Context, db replication.Querier, flavor replication.Flavor, fs *replicationdatapb.FullStatus) error {
	q := "SELECT @@global.binlog_format, @@global.log_bin, @@global.log_slave_updates, @@global.binlog_row_image, @@global.gtid_purged"
	if flavor.IsMariaDB() {
		// MariaDB has no gtid_purged: what was purged is not recorded as a set.
		q = "SELECT @@global.binlog_format, @@global.log_bin, @@global.log_slave_updates, @@global.binlog_row_image, ''"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return mysqlErr(err, "cannot read the binary log settings")
	}
	defer rows.Close()
	if !rows.Next() {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "no row from %s", q)
	}
	var logBin, replicaUpdates int
	var purged string
	if err := rows.Scan(&fs.BinlogFormat, &logBin, &replicaUpdates, &fs.BinlogRowImage, &purged); err != nil {
		return mysqlErr(err, "cannot read the binary log settings")
	}
	fs.LogBinEnabled, fs.LogReplicaUpdates = logBin == 1, replicaUpdates == 1
	if purged != "" {
		fs.GtidPurged = string(flavor.PositionFlavor()) + "/" + purged
	}
	return nil
}

func topoAlias(a *topodatapb.TabletAlias) string {
	if a == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s-%010d", a.Cell, a.Uid)
}

func proto3Equal(a, b *topodatapb.TabletAlias) bool { return proto.Equal(a, b) }

// quoteIdent quotes a MySQL identifier (the sidecar database name was validated when read).
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
