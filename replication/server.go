package replication

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// ServerInfo describes a server as found by Detect.
type ServerInfo struct {
	Flavor  Flavor
	Version Version
	// VersionString is @@version verbatim, e.g. "10.11.19-MariaDB-0+deb12u1".
	VersionString string
	// VersionComment is @@version_comment, e.g. "Debian 12".
	VersionComment string
	// ServerID is @@server_id.
	ServerID uint32
	// ServerUUID is @@server_uuid on MySQL and "" on MariaDB (which has none).
	ServerUUID string
	// GTIDDomainID is @@gtid_domain_id on MariaDB and 0 on MySQL.
	GTIDDomainID uint32
	// GTIDMode is @@gtid_mode on MySQL ("ON", "OFF", "ON_PERMISSIVE",
	// "OFF_PERMISSIVE") and "" on MariaDB, whose GTIDs are always on.
	GTIDMode string
	// ReadOnly is @@read_only.
	ReadOnly bool
	// SuperReadOnly is @@super_read_only on MySQL; always false on MariaDB.
	SuperReadOnly bool
}

// row is one result row, by column name. NULL is an invalid NullString.
type row map[string]sql.NullString

// field returns the first of the named columns that is present and not
// NULL; several names cover the MySQL 8.0.22+ renames (Source_*, Replica_*).
func (r row) field(names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := r[n]; ok && v.Valid {
			return v.String, true
		}
	}
	return "", false
}

// queryRows runs query and returns every row by column name, so callers
// tolerate extra, missing or reordered columns.
func queryRows(ctx context.Context, q Querier, query string) ([]row, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	defer rows.Close() //nolint:errcheck // Err and the explicit Close below report failures.
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []row
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("replication: %s: %w", query, err)
		}
		r := make(row, len(cols))
		for i, c := range cols {
			r[c] = vals[i]
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	return out, nil
}

// queryOne runs a query expected to return exactly one row.
func queryOne(ctx context.Context, q Querier, query string) (row, error) {
	rows, err := queryRows(ctx, q, query)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("%w: %s returned %d rows, want 1", ErrUnexpectedResult, query, len(rows))
	}
	return rows[0], nil
}

// need returns a non-NULL column of r or an ErrUnexpectedResult error.
func (r row) need(query, name string) (string, error) {
	v, ok := r.field(name)
	if !ok {
		return "", fmt.Errorf("%w: %s: column %s is missing or NULL", ErrUnexpectedResult, query, name)
	}
	return v, nil
}

// parseSwitch interprets a boolean system variable as returned by SELECT:
// 0/1, OFF/ON, or one of MariaDB's newer read_only levels (all "on").
func parseSwitch(name, v string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "0", "OFF", "FALSE", "NO":
		return false, nil
	case "1", "ON", "TRUE", "YES", "NO_LOCK", "NO_LOCK_NO_ADMIN":
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s has unexpected value %q", ErrUnexpectedResult, name, v)
	}
}

const detectQuery = "SELECT @@version AS version, @@version_comment AS version_comment, " +
	"@@global.server_id AS server_id, @@global.read_only AS read_only"

// Detect reads the server's version, flavor, server_id and read-only state,
// plus server_uuid, super_read_only and gtid_mode on MySQL and
// gtid_domain_id on MariaDB. Unsupported servers return an error wrapping
// ErrUnsupportedServer.
func Detect(ctx context.Context, q Querier) (ServerInfo, error) {
	r, err := queryOne(ctx, q, detectQuery)
	if err != nil {
		return ServerInfo{}, err
	}
	var info ServerInfo
	info.VersionString, _ = r.field("version")
	info.VersionComment, _ = r.field("version_comment")
	info.Flavor, info.Version, err = detectFlavor(info.VersionString, info.VersionComment)
	if err != nil {
		return ServerInfo{}, err
	}
	if info.ServerID, err = needUint32(r, detectQuery, "server_id"); err != nil {
		return ServerInfo{}, err
	}
	if info.ReadOnly, err = needSwitch(r, detectQuery, "read_only"); err != nil {
		return ServerInfo{}, err
	}
	if info.Flavor.IsMariaDB() {
		return detectMariaDB(ctx, q, info)
	}
	return detectMySQL(ctx, q, info)
}

const detectMariaDBQuery = "SELECT @@global.gtid_domain_id AS gtid_domain_id"

// detectMariaDB fills the MariaDB-only fields of info.
func detectMariaDB(ctx context.Context, q Querier, info ServerInfo) (ServerInfo, error) {
	r, err := queryOne(ctx, q, detectMariaDBQuery)
	if err != nil {
		return ServerInfo{}, err
	}
	if info.GTIDDomainID, err = needUint32(r, detectMariaDBQuery, "gtid_domain_id"); err != nil {
		return ServerInfo{}, err
	}
	return info, nil
}

const detectMySQLQuery = "SELECT @@global.server_uuid AS server_uuid, " +
	"@@global.super_read_only AS super_read_only, @@global.gtid_mode AS gtid_mode"

// detectMySQL fills the MySQL-only fields of info.
func detectMySQL(ctx context.Context, q Querier, info ServerInfo) (ServerInfo, error) {
	r, err := queryOne(ctx, q, detectMySQLQuery)
	if err != nil {
		return ServerInfo{}, err
	}
	if info.ServerUUID, err = r.need(detectMySQLQuery, "server_uuid"); err != nil {
		return ServerInfo{}, err
	}
	if info.SuperReadOnly, err = needSwitch(r, detectMySQLQuery, "super_read_only"); err != nil {
		return ServerInfo{}, err
	}
	if info.GTIDMode, err = r.need(detectMySQLQuery, "gtid_mode"); err != nil {
		return ServerInfo{}, err
	}
	return info, nil
}

// needUint32 reads a non-NULL unsigned 32-bit column.
func needUint32(r row, query, name string) (uint32, error) {
	v, err := r.need(query, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: column %s = %q is not a 32-bit unsigned number",
			ErrUnexpectedResult, query, name, v)
	}
	return uint32(n), nil
}

// needSwitch reads a non-NULL boolean column.
func needSwitch(r row, query, name string) (bool, error) {
	v, err := r.need(query, name)
	if err != nil {
		return false, err
	}
	return parseSwitch(name, v)
}

const (
	mariaDBPositionQuery = "SELECT @@global.gtid_binlog_pos AS gtid_binlog_pos"
	mysqlPositionQuery   = "SELECT @@global.gtid_mode AS gtid_mode, @@global.gtid_executed AS gtid_executed"
)

// PrimaryPosition returns the position of everything the server has written
// to its binary log: @@gtid_binlog_pos on MariaDB (empty on a server that
// has logged nothing yet, giving "MariaDB/"), @@gtid_executed on MySQL. A
// MySQL server whose gtid_mode is not ON returns an error wrapping
// ErrGTIDDisabled.
func PrimaryPosition(ctx context.Context, q Querier, flavor Flavor) (Position, error) {
	if err := flavor.check(); err != nil {
		return Position{}, err
	}
	if flavor.IsMariaDB() {
		r, err := queryOne(ctx, q, mariaDBPositionQuery)
		if err != nil {
			return Position{}, err
		}
		v, err := r.need(mariaDBPositionQuery, "gtid_binlog_pos")
		if err != nil {
			return Position{}, err
		}
		return ParseGTIDSet(PositionMariaDB, v)
	}
	r, err := queryOne(ctx, q, mysqlPositionQuery)
	if err != nil {
		return Position{}, err
	}
	mode, err := r.need(mysqlPositionQuery, "gtid_mode")
	if err != nil {
		return Position{}, err
	}
	if !strings.EqualFold(strings.TrimSpace(mode), "ON") {
		return Position{}, fmt.Errorf("%w: gtid_mode is %s", ErrGTIDDisabled, mode)
	}
	v, err := r.need(mysqlPositionQuery, "gtid_executed")
	if err != nil {
		return Position{}, err
	}
	return ParseGTIDSet(PositionMySQL56, v)
}

const readOnlyQuery = "SELECT @@global.read_only AS read_only"

// ReadOnly reports the server's global read_only setting (on MySQL,
// super_read_only implies read_only).
func ReadOnly(ctx context.Context, q Querier) (bool, error) {
	r, err := queryOne(ctx, q, readOnlyQuery)
	if err != nil {
		return false, err
	}
	return needSwitch(r, readOnlyQuery, "read_only")
}

// readOnlyStatements returns the statements, in order, that SetReadOnly runs.
func readOnlyStatements(flavor Flavor, on bool) []string {
	switch {
	case flavor.IsMariaDB() && on:
		return []string{"SET GLOBAL read_only = ON"}
	case flavor.IsMariaDB():
		return []string{"SET GLOBAL read_only = OFF"}
	case on:
		return []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}
	default:
		return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	}
}

// SetReadOnly turns the server's read-only mode on or off. On MySQL, on
// sets read_only and super_read_only (so even SUPER accounts cannot write),
// off clears both. MariaDB has no super_read_only, so only read_only is
// changed there; MariaDB accounts holding READ_ONLY ADMIN (e.g. ALL
// PRIVILEGES) and the replication threads can still write.
func SetReadOnly(ctx context.Context, q Querier, flavor Flavor, on bool) error {
	if err := flavor.check(); err != nil {
		return err
	}
	for _, stmt := range readOnlyStatements(flavor, on) {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("replication: %s: %w", stmt, err)
		}
	}
	return nil
}
