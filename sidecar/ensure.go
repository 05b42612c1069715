package sidecar

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Mode says how Ensure may write: see the package doc.
type Mode int

const (
	// Replicated is for a primary: objects are created with binary logging on, upgrades run.
	Replicated Mode = iota + 1
	// Local is for a replica: objects are created with sql_log_bin=0 on the session, no upgrade
	// runs, the server's GTID positions do not move.
	Local
)

func (m Mode) String() string {
	switch m {
	case Replicated:
		return "replicated"
	case Local:
		return "local"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// restoreTimeout bounds restoring the session (and super_read_only) after Ensure, which runs
// even when the caller's context has ended.
const restoreTimeout = 10 * time.Second

// Ensure brings the sidecar database dbName and its tables to the current version on the
// server conn is connected to, executing only what is missing (nothing at all when the schema
// is current). conn must be a DBA connection (CREATE, and SUPER or BINLOG ADMIN for
// sql_log_bin); one *sql.Conn is needed because Local mode works through a session variable.
// The session's sql_log_bin (and, on MySQL in Local mode, super_read_only) is restored before
// Ensure returns; if that fails the connection is discarded rather than given back to its pool
// with binlogging off.
//
// created names what was created or altered: the database as `name`, tables as `name`.`table`
// (the version row, written when only it was missing, is not listed).
// Errors carry a vtrpc code; MySQL errors keep their errno (rpcerr.FromMySQL). In Replicated
// mode a read_only server is refused with FAILED_PRECONDITION before anything is executed.
func Ensure(ctx context.Context, conn *sql.Conn, dbName string, mode Mode) (created []string, err error) {
	return ensure(ctx, conn, dbName, mode, current)
}

func ensure(ctx context.Context, conn *sql.Conn, db string, mode Mode, s schemaDef) ([]string, error) {
	if err := ValidateName(db); err != nil {
		return nil, err
	}
	if mode != Replicated && mode != Local {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "sidecar: unknown mode %v", mode)
	}
	if conn == nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "sidecar: nil connection")
	}
	st, err := inspect(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	p := makePlan(s, st, mode, db)
	if len(p.steps) == 0 {
		return nil, nil
	}
	if mode == Replicated && st.readOnly {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"sidecar: %s needs changes but the server is read_only (a replica): creating them with binlogging on "+
				"would give the replica GTIDs of its own; use Local mode on a replica, or turn read_only off on a primary first",
			QuoteName(db))
	}
	if err := run(ctx, conn, st, mode, p); err != nil {
		return nil, err
	}
	return p.created, nil
}

type flavor int

const (
	flavorMariaDB flavor = iota + 1
	flavorMySQL
)

// state is what inspect found on the server.
type state struct {
	flavor        flavor
	readOnly      bool
	superReadOnly bool // MySQL only
	sessionBinlog bool // @@session.sql_log_bin
	dbExists      bool
	tables        map[string]bool // existing tables of the sidecar database, lower case
	version       int             // the version row; 0: none
}

// inspect reads the server's flavor, read-only state and what exists of the sidecar. It only
// runs SELECTs.
func inspect(ctx context.Context, conn *sql.Conn, db string) (state, error) {
	st := state{tables: map[string]bool{}}
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT @@version, @@global.read_only, @@session.sql_log_bin").
		Scan(&version, &st.readOnly, &st.sessionBinlog); err != nil {
		return st, rpcerr.FromMySQL(err, "sidecar: read server variables")
	}
	st.flavor = flavorMySQL
	if strings.Contains(strings.ToLower(version), "mariadb") {
		st.flavor = flavorMariaDB
	}
	if st.flavor == flavorMySQL {
		if err := conn.QueryRowContext(ctx, "SELECT @@global.super_read_only").Scan(&st.superReadOnly); err != nil {
			return st, rpcerr.FromMySQL(err, "sidecar: read super_read_only")
		}
	}
	var n int
	if err := conn.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db).Scan(&n); err != nil {
		return st, rpcerr.FromMySQL(err, "sidecar: look up database "+QuoteName(db))
	}
	st.dbExists = n > 0
	if !st.dbExists {
		return st, nil
	}
	if err := readTables(ctx, conn, db, st.tables); err != nil {
		return st, err
	}
	if !st.tables[versionTable] {
		return st, nil
	}
	err := conn.QueryRowContext(ctx,
		"SELECT `version` FROM "+QuoteName(db)+"."+QuoteName(versionTable)+" WHERE `name` = ?", versionKey).Scan(&st.version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, rpcerr.FromMySQL(err, "sidecar: read the schema version")
	}
	return st, nil
}

func readTables(ctx context.Context, conn *sql.Conn, db string, into map[string]bool) error {
	rows, err := conn.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", db)
	if err != nil {
		return rpcerr.FromMySQL(err, "sidecar: list the tables of "+QuoteName(db))
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return rpcerr.FromMySQL(err, "sidecar: list the tables of "+QuoteName(db))
		}
		into[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return rpcerr.FromMySQL(err, "sidecar: list the tables of "+QuoteName(db))
	}
	return nil
}

// step is one statement of a plan. binlog says whether it must be written to the binary log
// (sql_log_bin=1) or not (0).
type step struct {
	desc   string
	sql    string
	binlog bool
}

type plan struct {
	steps   []step
	created []string
}

// makePlan decides what Ensure executes; it is pure so that the decisions are unit-tested.
func makePlan(s schemaDef, st state, mode Mode, db string) plan {
	var p plan
	replicated := mode == Replicated
	qdb := QuoteName(db)
	if !st.dbExists {
		p.steps = append(p.steps, step{"create database " + qdb, createDatabaseSQL(db), replicated})
		p.created = append(p.created, qdb)
	}
	anyExisted := false
	for _, t := range s.tables {
		if st.tables[t.name] {
			anyExisted = anyExisted || t.name != versionTable
			continue
		}
		name := qdb + "." + QuoteName(t.name)
		p.steps = append(p.steps, step{"create table " + name, createTableSQL(db, t), replicated})
		p.created = append(p.created, name)
	}
	// base is the version of the tables that existed before this call (package doc, rule 5).
	base := st.version
	if base == 0 {
		base = s.version
		if anyExisted {
			base = 1
		}
	}
	target := base
	if replicated && base < s.version {
		target = s.version
		altered := map[string]bool{}
		for _, u := range s.upgrades {
			if u.version <= base || !st.tables[u.table] {
				continue // already applied, or the table is created at the current definition
			}
			name := qdb + "." + QuoteName(u.table)
			p.steps = append(p.steps, step{"upgrade " + name + " to version " + strconv.Itoa(u.version),
				alterTableSQL(db, u.table, u.clause(st.flavor)), true})
			if !altered[name] {
				altered[name] = true
				p.created = append(p.created, name)
			}
		}
	}
	if st.version < target {
		// Never replicated: rule 3. GREATEST keeps a concurrent Ensure of a newer binary.
		p.steps = append(p.steps, step{"record schema version " + strconv.Itoa(target),
			"INSERT INTO " + qdb + "." + QuoteName(versionTable) + " (`name`, `version`) VALUES ('" + versionKey + "', " +
				strconv.Itoa(target) + ") ON DUPLICATE KEY UPDATE `version` = GREATEST(`version`, VALUES(`version`))", false})
	}
	return p
}

// run executes p on conn, switching sql_log_bin per step, and restores the session afterwards.
func run(ctx context.Context, conn *sql.Conn, st state, mode Mode, p plan) (err error) {
	binlog := st.sessionBinlog
	superReadOnlyOff := false
	defer func() {
		if rerr := restore(ctx, conn, st, binlog, superReadOnlyOff); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if mode == Local && st.superReadOnly {
		// MySQL: super_read_only refuses even a DBA's DDL. read_only stays on, so only
		// SUPER sessions could write in this window; Vitess lifts it the same way for DBA work.
		if _, err := conn.ExecContext(ctx, "SET GLOBAL super_read_only = OFF"); err != nil {
			return rpcerr.FromMySQL(err, "sidecar: lift super_read_only")
		}
		superReadOnlyOff = true
	}
	for _, s := range p.steps {
		if s.binlog != binlog {
			if _, err := conn.ExecContext(ctx, setBinlogSQL(s.binlog)); err != nil {
				return rpcerr.FromMySQL(err, "sidecar: "+setBinlogSQL(s.binlog))
			}
			binlog = s.binlog
		}
		if _, err := conn.ExecContext(ctx, s.sql); err != nil {
			return rpcerr.FromMySQL(err, "sidecar: "+s.desc)
		}
	}
	return nil
}

// restore puts back the session's sql_log_bin and the global super_read_only. When it cannot,
// the connection is discarded: a pooled connection must never carry sql_log_bin=0 to its next
// user (whose writes would silently not replicate).
func restore(ctx context.Context, conn *sql.Conn, st state, binlog, superReadOnlyOff bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	var errs []error
	if superReadOnlyOff {
		if _, err := conn.ExecContext(ctx, "SET GLOBAL super_read_only = ON"); err != nil {
			errs = append(errs, rpcerr.FromMySQL(err, "sidecar: restore super_read_only=ON (it is OFF, read_only is still ON)"))
		}
	}
	if binlog != st.sessionBinlog {
		if _, err := conn.ExecContext(ctx, setBinlogSQL(st.sessionBinlog)); err != nil {
			errs = append(errs, rpcerr.FromMySQL(err, "sidecar: restore sql_log_bin (connection discarded)"))
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	return errors.Join(errs...)
}

func setBinlogSQL(on bool) string {
	if on {
		return "SET SESSION sql_log_bin = 1"
	}
	return "SET SESSION sql_log_bin = 0"
}
