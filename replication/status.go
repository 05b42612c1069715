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
	// Position is the executed position: MariaDB gtid_slave_pos, MySQL
	// Executed_Gtid_Set.
	Position Position
	// RelayLogPosition is everything received: Position merged with MariaDB
	// Gtid_IO_Pos or MySQL Retrieved_Gtid_Set.
	RelayLogPosition Position
	// FilePosition is the executed source binlog coordinate
	// (Relay_Master_Log_File:Exec_Master_Log_Pos), zero if not reported.
	FilePosition Position
	// LastIOError and LastSQLError are the last thread errors, "" if none.
	LastIOError, LastSQLError string
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
	file, okFile := r.field("Relay_Source_Log_File", "Relay_Master_Log_File")
	pos, okPos := r.field("Exec_Source_Log_Pos", "Exec_Master_Log_Pos")
	if okFile && okPos && file != "" {
		// A malformed coordinate only loses this informational field.
		st.FilePosition, _ = ParseGTIDSet(PositionFilePos, file+":"+pos)
	}
	return st
}
