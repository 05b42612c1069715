package sidecar

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

const (
	qVars          = "SELECT @@version, @@global.read_only, @@session.sql_log_bin"
	qSuperReadOnly = "SELECT @@global.super_read_only"
	qSchema        = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?"
	qTables        = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?"
	qVersion       = "SELECT `version` FROM `_vt`.`sidecar_schema` WHERE `name` = ?"
)

// freshServer answers inspect for a server without the sidecar database.
func freshServer(version string, readOnly, superReadOnly bool) map[string]fakeAnswer {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return map[string]fakeAnswer{
		qVars:          {rows: [][]string{{version, b(readOnly), "1"}}},
		qSuperReadOnly: {rows: [][]string{{b(superReadOnly)}}},
		qSchema:        {rows: [][]string{{"0"}}},
	}
}

// nonSelect returns the statements that are not SELECTs, in order.
func nonSelect(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		if !strings.HasPrefix(s, "SELECT") {
			out = append(out, s)
		}
	}
	return out
}

func TestEnsureLocalSessionHandling(t *testing.T) {
	cases := []struct {
		name          string
		version       string
		superReadOnly bool
		first, last   []string // the non-SELECT statements around the DDL
	}{
		{"MariaDB", "10.11.19-MariaDB-0+deb12u1", false,
			[]string{"SET SESSION sql_log_bin = 0"}, []string{"SET SESSION sql_log_bin = 1"}},
		{"MySQL with super_read_only", "8.0.40", true,
			[]string{"SET GLOBAL super_read_only = OFF", "SET SESSION sql_log_bin = 0"},
			[]string{"SET GLOBAL super_read_only = ON", "SET SESSION sql_log_bin = 1"}},
		{"MySQL without super_read_only", "8.4.3", false,
			[]string{"SET SESSION sql_log_bin = 0"}, []string{"SET SESSION sql_log_bin = 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, conn := newFakeConn(t, freshServer(c.version, true, c.superReadOnly))
			created, err := Ensure(context.Background(), conn, "_vt", Local)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if len(created) != 1+len(tables) {
				t.Errorf("created %d objects, want %d", len(created), 1+len(tables))
			}
			stmts := nonSelect(srv.statements())
			n := len(c.first)
			if !slices.Equal(stmts[:n], c.first) || !slices.Equal(stmts[len(stmts)-len(c.last):], c.last) {
				t.Fatalf("statements:\n%s", strings.Join(stmts, "\n"))
			}
			ddl := stmts[n : len(stmts)-len(c.last)]
			if len(ddl) != 2+len(tables) || !strings.HasPrefix(ddl[0], "CREATE DATABASE") ||
				!strings.HasPrefix(ddl[len(ddl)-1], "INSERT INTO `_vt`.`sidecar_schema`") {
				t.Errorf("DDL between the session changes:\n%s", strings.Join(ddl, "\n"))
			}
		})
	}
}

func TestEnsureReplicatedWritesVersionUnlogged(t *testing.T) {
	srv, conn := newFakeConn(t, freshServer("10.11.19-MariaDB", false, false))
	if _, err := Ensure(context.Background(), conn, "_vt", Replicated); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	stmts := nonSelect(srv.statements())
	// The DDL runs with the session's sql_log_bin=1; only the version row is unlogged.
	n := len(stmts)
	if n != 1+len(tables)+3 ||
		!slices.Equal(stmts[n-3:n-2], []string{"SET SESSION sql_log_bin = 0"}) ||
		!strings.HasPrefix(stmts[n-2], "INSERT INTO `_vt`.`sidecar_schema`") ||
		stmts[n-1] != "SET SESSION sql_log_bin = 1" {
		t.Errorf("statements:\n%s", strings.Join(stmts, "\n"))
	}
	for _, s := range stmts[:n-3] {
		if strings.HasPrefix(s, "SET") {
			t.Errorf("unexpected %q before the DDL", s)
		}
	}
}

func TestEnsureReplicatedSessionWithBinlogOff(t *testing.T) {
	// A connection whose session has sql_log_bin=0 must still replicate the DDL, and get its
	// own setting back.
	answers := freshServer("10.11.19-MariaDB", false, false)
	answers[qVars] = fakeAnswer{rows: [][]string{{"10.11.19-MariaDB", "0", "0"}}}
	srv, conn := newFakeConn(t, answers)
	if _, err := Ensure(context.Background(), conn, "_vt", Replicated); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	stmts := nonSelect(srv.statements())
	if stmts[0] != "SET SESSION sql_log_bin = 1" || stmts[len(stmts)-2] != "SET SESSION sql_log_bin = 0" ||
		!strings.HasPrefix(stmts[len(stmts)-1], "INSERT INTO") {
		t.Errorf("statements:\n%s", strings.Join(stmts, "\n"))
	}
}

func TestEnsureRefusals(t *testing.T) {
	current := map[string]fakeAnswer{
		qVars:   {rows: [][]string{{"10.11.19-MariaDB", "1", "1"}}},
		qSchema: {rows: [][]string{{"1"}}},
		qTables: {rows: func() [][]string {
			var r [][]string
			for _, n := range Tables() {
				r = append(r, []string{n})
			}
			return r
		}()},
		qVersion: {rows: [][]string{{"1"}}},
	}
	cases := []struct {
		name    string
		answers map[string]fakeAnswer
		db      string
		mode    Mode
		code    vtrpcpb.Code
		errno   uint16
	}{
		{"bad name", freshServer("10.11.19-MariaDB", false, false), "a.b", Replicated, vtrpcpb.Code_INVALID_ARGUMENT, 0},
		{"bad mode", freshServer("10.11.19-MariaDB", false, false), "_vt", Mode(9), vtrpcpb.Code_INVALID_ARGUMENT, 0},
		{"replicated on a read_only server", freshServer("10.11.19-MariaDB", true, false), "_vt", Replicated,
			vtrpcpb.Code_FAILED_PRECONDITION, 0},
		{"MySQL error keeps its errno", map[string]fakeAnswer{
			qVars: {err: &mysql.MySQLError{Number: 1227, SQLState: [5]byte{'4', '2', '0', '0', '0'}, Message: "Access denied"}},
		}, "_vt", Local, vtrpcpb.Code_PERMISSION_DENIED, 1227},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, conn := newFakeConn(t, c.answers)
			created, err := Ensure(context.Background(), conn, c.db, c.mode)
			if !errors.Is(err, rpcerr.OfCode(c.code)) || created != nil {
				t.Fatalf("Ensure = %v, %v; want code %v", created, err, c.code)
			}
			if num, _, _ := rpcerr.Errno(err); num != c.errno {
				t.Errorf("errno %d, want %d", num, c.errno)
			}
			if stmts := nonSelect(srv.statements()); len(stmts) != 0 {
				t.Errorf("refused Ensure executed %q", stmts)
			}
		})
	}
	// A current schema on a read_only server: nothing to do, so Replicated is fine.
	srv, conn := newFakeConn(t, current)
	if created, err := Ensure(context.Background(), conn, "_vt", Replicated); err != nil || created != nil {
		t.Errorf("Ensure on a current read_only server = %v, %v", created, err)
	}
	if stmts := nonSelect(srv.statements()); len(stmts) != 0 {
		t.Errorf("Ensure on a current schema executed %q", stmts)
	}
}

func TestEnsureFailedRestoreDiscardsConnection(t *testing.T) {
	answers := freshServer("10.11.19-MariaDB", true, false)
	answers["SET SESSION sql_log_bin = 1"] = fakeAnswer{err: &mysql.MySQLError{Number: 2013, Message: "Lost connection"}}
	_, conn := newFakeConn(t, answers)
	_, err := Ensure(context.Background(), conn, "_vt", Local)
	if num, _, _ := rpcerr.Errno(err); num != 2013 {
		t.Fatalf("Ensure = %v, want the restore's errno 2013", err)
	}
	if err := conn.PingContext(context.Background()); !errors.Is(err, sql.ErrConnDone) {
		t.Errorf("connection after a failed restore: Ping = %v, want sql.ErrConnDone (discarded)", err)
	}
}

func TestEnsureStopsAtFirstFailure(t *testing.T) {
	answers := freshServer("10.11.19-MariaDB", false, false)
	failing := createTableSQL("_vt", tables[3])
	answers[failing] = fakeAnswer{err: &mysql.MySQLError{Number: 1005, Message: "Can't create table"}}
	srv, conn := newFakeConn(t, answers)
	_, err := Ensure(context.Background(), conn, "_vt", Replicated)
	if num, _, _ := rpcerr.Errno(err); num != 1005 || rpcerr.Code(err) != vtrpcpb.Code_UNKNOWN {
		t.Fatalf("Ensure = %v (code %v), want errno 1005 with code UNKNOWN", err, rpcerr.Code(err))
	}
	stmts := nonSelect(srv.statements())
	if stmts[len(stmts)-1] != failing {
		t.Errorf("executed after the failure: %q", stmts[slices.Index(stmts, failing)+1:])
	}
	for _, s := range stmts {
		if strings.Contains(s, versionTable+"` (`name`") {
			t.Errorf("version recorded despite the failure: %q", s)
		}
	}
}
