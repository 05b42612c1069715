package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Status is a replica's replication status.
type Status struct {
	// Configured is true when a replication source is set up: the status
	// statement returned a row naming a source host.
	Configured bool
	// IOThreadRunning is true when the receiver (I/O) thread is running and
	// connected (Slave_IO_Running / Replica_IO_Running is "Yes").
	IOThreadRunning bool
	// IOThreadState is the raw I/O thread state: "Yes", "No" or
	// "Connecting" ("" when not configured).
	IOThreadState string
	// SQLThreadRunning is true when the applier (SQL) thread is running.
	SQLThreadRunning bool
	// LagKnown is false when the lag cannot be known: Seconds_Behind_Master
	// (Seconds_Behind_Source) is NULL, or either thread is not running.
	// Lag is then 0 and must not be read as "caught up".
	LagKnown bool
	// Lag is the replication lag reported by the server, valid if LagKnown.
	Lag time.Duration
	// SourceHost, SourcePort and SourceUser identify the source connection.
	SourceHost string
	SourcePort int
	SourceUser string
	// SourceServerID is the source's server_id (0 until first connected).
	SourceServerID uint32
	// SourceUUID is the source's server_uuid on MySQL; "" on MariaDB.
	SourceUUID string
	// UsingGTID is true when the replica positions itself by GTID (MariaDB
	// Using_Gtid is Slave_Pos/Current_Pos, MySQL Auto_Position is 1).
	UsingGTID bool
	// Position is the executed position: MariaDB's Gtid_Slave_Pos column,
	// MySQL Executed_Gtid_Set. On MariaDB 10.11 that column is not
	// @@gtid_slave_pos but includes the server's own newer writes (checked:
	// binlog 0-2-4 written by this server_id 2, @@gtid_slave_pos 0-1-3,
	// column 0-2-4), so a demoted primary reports what it holds.
	Position Position
	// RelayLogPosition is everything received: Position merged with MariaDB
	// Gtid_IO_Pos or MySQL Retrieved_Gtid_Set.
	RelayLogPosition Position
	// FilePosition is the executed source binlog coordinate
	// (Relay_Master_Log_File:Exec_Master_Log_Pos), zero if not reported.
	FilePosition Position
	// LastIOError and LastSQLError are the last thread errors, "" if none.
	LastIOError, LastSQLError string

	// IOState and SQLState are the thread states in Vitess's encoding
	// (replicationdata.Status io_state / sql_state).
	IOState, SQLState ReplicationState
	// SQLThreadState is the raw applier state: "Yes" or "No" ("" when not
	// configured).
	SQLThreadState string
	// IOStateMessage and SQLStateMessage are what the threads are doing,
	// e.g. "Waiting for master to send event" (Slave_IO_State /
	// Replica_IO_State, Slave_SQL_Running_State / Replica_SQL_Running_State).
	IOStateMessage, SQLStateMessage string
	// LastIOErrno and LastSQLErrno are the errnos of the last thread errors
	// (0 if none).
	LastIOErrno, LastSQLErrno int
	// SQLDelay is the configured delay of the applier (MASTER_DELAY).
	SQLDelay time.Duration
	// ConnectRetry is the pause between reconnection attempts.
	ConnectRetry time.Duration
	// HeartbeatInterval is the source heartbeat period when the status row
	// shows it (MariaDB Slave_heartbeat_period); 0 otherwise.
	HeartbeatInterval time.Duration
	// UsingGTIDMode is MariaDB's raw Using_Gtid: "Slave_Pos", "Current_Pos"
	// or "No" ("" on MySQL).
	UsingGTIDMode string
	// AutoPosition is MySQL's Auto_Position = 1.
	AutoPosition bool
	// HasReplicationFilters is true when any Replicate_* filter is set.
	HasReplicationFilters bool
	// SSLAllowed is Master_SSL_Allowed / Source_SSL_Allowed = "Yes".
	SSLAllowed bool
	// RelayLogSourceBinlogEquivalentPosition is the source binlog coordinate
	// the receiver has read up to (Master_Log_File:Read_Master_Log_Pos), zero
	// if not reported. ERS falls back to it when RelayLogPosition is empty.
	RelayLogSourceBinlogEquivalentPosition Position
	// RelayLogFilePosition is the applier's coordinate in the local relay
	// log (Relay_Log_File:Relay_Log_Pos), zero if not reported.
	RelayLogFilePosition Position
}

// ReplicationLagUnknown reports whether Lag must not be trusted (Vitess's
// replication_lag_unknown): the server reported no lag, or a thread is not
// running, or replication is not configured.
func (s Status) ReplicationLagUnknown() bool { return !s.LagKnown }

// ReplicationLagSeconds is Lag in whole seconds, 0 when unknown (Vitess's
// replication_lag_seconds).
func (s Status) ReplicationLagSeconds() uint32 {
	if !s.LagKnown {
		return 0
	}
	return uint32(min(s.Lag/time.Second, 1<<32-1))
}

// Running reports whether both threads run (IO "Yes", SQL "Yes").
func (s Status) Running() bool { return s.IOThreadRunning && s.SQLThreadRunning }

// ReplicationState is a replication thread's state, numbered as Vitess's
// replication.ReplicationState (the io_state / sql_state wire values).
type ReplicationState int32

// The thread states.
const (
	ReplicationStateUnknown ReplicationState = iota
	ReplicationStateStopped
	ReplicationStateConnecting
	ReplicationStateRunning
)

// String returns "Unknown", "Stopped", "Connecting" or "Running".
func (r ReplicationState) String() string {
	switch r {
	case ReplicationStateStopped:
		return "Stopped"
	case ReplicationStateConnecting:
		return "Connecting"
	case ReplicationStateRunning:
		return "Running"
	default:
		return "Unknown"
	}
}

// parseReplicationState maps a *_Running column ("Yes", "No",
// "Connecting"; "ON"/"OFF" from group replication) to a state.
func parseReplicationState(v string) ReplicationState {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "on", "true":
		return ReplicationStateRunning
	case "no", "off", "false":
		return ReplicationStateStopped
	case "connecting":
		return ReplicationStateConnecting
	default:
		return ReplicationStateUnknown
	}
}

// Status statements per flavor.
const (
	mariaDBStatusQuery     = "SHOW ALL SLAVES STATUS"
	mysqlStatusQuery       = "SHOW REPLICA STATUS"
	mysqlLegacyStatusQuery = "SHOW SLAVE STATUS"
	mariaDBSlavePosQuery   = "SELECT @@global.gtid_slave_pos AS gtid_slave_pos"
	// mysqlParseError is ER_PARSE_ERROR, returned by MySQL < 8.0.22 for
	// SHOW REPLICA STATUS.
	mysqlParseError = 1064
)

// ReplicaStatus reads the replication status of the server. A server with
// no replication source returns Status{Configured: false} and no error.
// MariaDB is asked SHOW ALL SLAVES STATUS (default connection), MySQL 8.0.22+
// SHOW REPLICA STATUS (older 8.0 falls back to SHOW SLAVE STATUS). Columns
// are read by name, so extra or missing columns are tolerated.
func ReplicaStatus(ctx context.Context, q Querier, flavor Flavor) (Status, error) {
	if err := flavor.check(); err != nil {
		return Status{}, err
	}
	if flavor.IsMariaDB() {
		return mariaDBReplicaStatus(ctx, q)
	}
	rows, err := queryRows(ctx, q, mysqlStatusQuery)
	var me *mysql.MySQLError
	if err != nil && flavor == FlavorMySQL80 && errors.As(err, &me) && me.Number == mysqlParseError {
		rows, err = queryRows(ctx, q, mysqlLegacyStatusQuery)
	}
	if err != nil {
		return Status{}, err
	}
	r, err := defaultSource(rows, "Channel_Name", "Channel_name")
	if err != nil || r == nil {
		return Status{}, err
	}
	st := parseCommonStatus(r)
	if !st.Configured {
		return Status{}, nil
	}
	return withMySQLPositions(st, r)
}

// mariaDBReplicaStatus implements ReplicaStatus for MariaDB.
func mariaDBReplicaStatus(ctx context.Context, q Querier) (Status, error) {
	rows, err := queryRows(ctx, q, mariaDBStatusQuery)
	if err != nil {
		return Status{}, err
	}
	r, err := defaultSource(rows, "Connection_name", "Connection_Name")
	if err != nil || r == nil {
		return Status{}, err
	}
	st := parseCommonStatus(r)
	if !st.Configured {
		return Status{}, nil
	}
	slavePos, ok := r.field("Gtid_Slave_Pos")
	if !ok {
		// Plain SHOW SLAVE STATUS-shaped answers lack the column.
		pr, err := queryOne(ctx, q, mariaDBSlavePosQuery)
		if err != nil {
			return Status{}, err
		}
		if slavePos, err = pr.need(mariaDBSlavePosQuery, "gtid_slave_pos"); err != nil {
			return Status{}, err
		}
	}
	if st.Position, err = ParseGTIDSet(PositionMariaDB, slavePos); err != nil {
		return Status{}, fmt.Errorf("replication: Gtid_Slave_Pos: %w", err)
	}
	st.RelayLogPosition = st.Position
	if ioPos, ok := r.field("Gtid_IO_Pos"); ok && strings.TrimSpace(ioPos) != "" {
		received, err := ParseGTIDSet(PositionMariaDB, ioPos)
		if err != nil {
			return Status{}, fmt.Errorf("replication: Gtid_IO_Pos: %w", err)
		}
		if st.RelayLogPosition, err = st.Position.union(received); err != nil {
			return Status{}, err
		}
	}
	return st, nil
}

// withMySQLPositions fills the GTID positions of a MySQL status row.
func withMySQLPositions(st Status, r row) (Status, error) {
	executed, _ := r.field("Executed_Gtid_Set")
	var err error
	if st.Position, err = ParseGTIDSet(PositionMySQL56, executed); err != nil {
		return Status{}, fmt.Errorf("replication: Executed_Gtid_Set: %w", err)
	}
	retrieved, _ := r.field("Retrieved_Gtid_Set")
	received, err := ParseGTIDSet(PositionMySQL56, retrieved)
	if err != nil {
		return Status{}, fmt.Errorf("replication: Retrieved_Gtid_Set: %w", err)
	}
	// Retrieved_Gtid_Set only covers the current relay logs; everything
	// executed was received before, so the union is the received position.
	if st.RelayLogPosition, err = st.Position.union(received); err != nil {
		return Status{}, err
	}
	st.SourceUUID, _ = r.field("Source_UUID", "Master_UUID")
	return st, nil
}

// defaultSource picks the status row of the default (unnamed) replication
// connection or channel. It returns nil without error when there is none,
// the only row when there is exactly one, and ErrMultipleSources when there
// are several named ones.
func defaultSource(rows []row, nameColumns ...string) (row, error) {
	var named []string
	for _, r := range rows {
		name, _ := r.field(nameColumns...)
		if name == "" {
			return r, nil
		}
		named = append(named, name)
	}
	switch len(rows) {
	case 0:
		return nil, nil
	case 1:
		return rows[0], nil
	default:
		return nil, fmt.Errorf("%w: named sources %q and no default one", ErrMultipleSources, named)
	}
}

// parseCommonStatus reads the columns shared by MariaDB and MySQL (old and
// new names). Unparsable numbers are treated as unknown.
func parseCommonStatus(r row) Status {
	var st Status
	st.SourceHost, _ = r.field("Source_Host", "Master_Host")
	st.Configured = st.SourceHost != ""
	if !st.Configured {
		return st
	}
	st.SourceUser, _ = r.field("Source_User", "Master_User")
	if port, ok := r.field("Source_Port", "Master_Port"); ok {
		st.SourcePort, _ = strconv.Atoi(strings.TrimSpace(port))
	}
	if id, ok := r.field("Source_Server_Id", "Master_Server_Id"); ok {
		n, _ := strconv.ParseUint(strings.TrimSpace(id), 10, 32)
		st.SourceServerID = uint32(n)
	}
	st.IOThreadState, _ = r.field("Replica_IO_Running", "Slave_IO_Running")
	st.IOThreadRunning = strings.EqualFold(st.IOThreadState, "Yes")
	sqlState, _ := r.field("Replica_SQL_Running", "Slave_SQL_Running")
	st.SQLThreadRunning = strings.EqualFold(sqlState, "Yes")
	if secs, ok := r.field("Seconds_Behind_Source", "Seconds_Behind_Master"); ok {
		n, err := strconv.ParseUint(strings.TrimSpace(secs), 10, 32)
		st.LagKnown = err == nil && st.IOThreadRunning && st.SQLThreadRunning
		if st.LagKnown {
			st.Lag = time.Duration(n) * time.Second
		}
	}
	using, _ := r.field("Using_Gtid")
	auto, _ := r.field("Auto_Position")
	st.UsingGTID = (using != "" && !strings.EqualFold(using, "No")) || strings.TrimSpace(auto) == "1"
	st.LastIOError, _ = r.field("Last_IO_Error")
	st.LastSQLError, _ = r.field("Last_SQL_Error")
	// A malformed coordinate only loses that informational field.
	st.FilePosition = coordinate(r, []string{"Relay_Source_Log_File", "Relay_Master_Log_File"},
		[]string{"Exec_Source_Log_Pos", "Exec_Master_Log_Pos"})
	st.RelayLogSourceBinlogEquivalentPosition = coordinate(r, []string{"Source_Log_File", "Master_Log_File"},
		[]string{"Read_Source_Log_Pos", "Read_Master_Log_Pos"})
	st.RelayLogFilePosition = coordinate(r, []string{"Relay_Log_File"}, []string{"Relay_Log_Pos"})
	parseExtendedStatus(&st, r, sqlState)
	return st
}

// coordinate reads a file:offset pair of columns as a FilePos position;
// missing, empty or malformed values give the zero Position.
func coordinate(r row, fileCols, posCols []string) Position {
	file, okFile := r.field(fileCols...)
	pos, okPos := r.field(posCols...)
	if !okFile || !okPos || file == "" {
		return Position{}
	}
	p, _ := ParseGTIDSet(PositionFilePos, file+":"+pos)
	return p
}

// replicationFilterColumns are the Replicate_* filter columns; any
// non-empty one means the replica filters what it applies.
var replicationFilterColumns = []string{"Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table",
	"Replicate_Ignore_Table", "Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table",
	"Replicate_Do_Domain_Ids", "Replicate_Ignore_Domain_Ids", "Replicate_Rewrite_DB"}

// parseExtendedStatus fills the fields beyond the health check's needs.
func parseExtendedStatus(st *Status, r row, sqlState string) {
	st.SQLThreadState = sqlState
	st.IOState = parseReplicationState(st.IOThreadState)
	st.SQLState = parseReplicationState(sqlState)
	st.IOStateMessage, _ = r.field("Replica_IO_State", "Slave_IO_State")
	st.SQLStateMessage, _ = r.field("Replica_SQL_Running_State", "Slave_SQL_Running_State")
	st.LastIOErrno = atoiField(r, "Last_IO_Errno")
	st.LastSQLErrno = atoiField(r, "Last_SQL_Errno")
	st.SQLDelay = time.Duration(atoiField(r, "SQL_Delay")) * time.Second
	st.ConnectRetry = time.Duration(atoiField(r, "Connect_Retry")) * time.Second
	if hb, ok := r.field("Slave_heartbeat_period"); ok {
		if secs, err := strconv.ParseFloat(strings.TrimSpace(hb), 64); err == nil && secs >= 0 && secs < 1e7 {
			st.HeartbeatInterval = time.Duration(secs * float64(time.Second))
		}
	}
	st.UsingGTIDMode, _ = r.field("Using_Gtid")
	auto, _ := r.field("Auto_Position")
	st.AutoPosition = strings.TrimSpace(auto) == "1"
	ssl, _ := r.field("Source_SSL_Allowed", "Master_SSL_Allowed")
	st.SSLAllowed = strings.EqualFold(ssl, "Yes")
	for _, c := range replicationFilterColumns {
		if v, ok := r.field(c); ok && strings.TrimSpace(v) != "" {
			st.HasReplicationFilters = true
		}
	}
}

// atoiField reads a non-negative integer column; anything else is 0.
func atoiField(r row, name string) int {
	v, ok := r.field(name)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
