package mysqlconn

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// These tests run against real mariadbd processes.

func serverConfig(s *mariadbtest.Server) Config {
	return Config{
		Network:  "tcp",
		Address:  net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		User:     mariadbtest.UserDBA,
		Password: mariadbtest.Password,
	}
}

// connect opens a connection closed when t ends; mod may adjust the config.
func connect(t testing.TB, s *mariadbtest.Server, mod func(*Config)) *Conn {
	t.Helper()
	cfg := serverConfig(s)
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// useMySQL selects the mysql database: the sequence engine's seq_1_to_N
// tables need a current database.
func useMySQL(c *Config) { c.DBName = "mysql" }

// exec runs sql and fails the test on error.
func exec(t testing.TB, c *Conn, sql string) *querypb.QueryResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qr, err := c.Execute(ctx, sql, 0, FieldsAll)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return qr
}

// value returns column i of row r as a string, or "NULL".
func value(r *querypb.Row, i int) string {
	var off int64
	for k := range i {
		off += max(r.Lengths[k], 0)
	}
	if r.Lengths[i] < 0 {
		return "NULL"
	}
	return string(r.Values[off : off+r.Lengths[i]])
}

func TestConnect(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"tcp", nil},
		{"unix socket", func(c *Config) { c.Network, c.Address = "", s.Socket }},
		{"app user, database, latin1", func(c *Config) {
			c.User, c.DBName, c.Charset = mariadbtest.UserApp, "mysql", "latin1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, s, tt.mod)
			qr := exec(t, c, "select connection_id(), @@version, database(), @@character_set_client")
			row := qr.Rows[0]
			if got := value(row, 0); got != strconv.FormatUint(uint64(c.ID()), 10) {
				t.Errorf("ID() = %d, server says %s", c.ID(), got)
			}
			if got := value(row, 1); c.ServerVersion() != got || !strings.Contains(got, "MariaDB") {
				t.Errorf("ServerVersion() = %q, @@version = %q", c.ServerVersion(), got)
			}
			cfg := serverConfig(s)
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			cfg = cfg.withDefaults()
			if db := value(row, 2); cfg.DBName != "" && db != cfg.DBName {
				t.Errorf("database() = %q, want %q", db, cfg.DBName)
			}
			if cs := value(row, 3); cs != strings.ToLower(cfg.Charset) {
				t.Errorf("character_set_client = %q, want %q", cs, cfg.Charset)
			}
		})
	}
}

func TestConnectErrors(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	tests := []struct {
		name      string
		mod       func(*Config)
		wantNum   uint16
		wantState string
	}{
		{"wrong password", func(c *Config) { c.Password = "nope" }, 1045, "28000"},
		{"unknown database", func(c *Config) { c.DBName = "nosuchdb" }, 1049, "42000"},
		{"nothing listening", func(c *Config) { c.Address = closedPort }, CRConnHostError, SSUnknownSQLState},
		{"no socket", func(c *Config) { c.Network, c.Address = "unix", s.Socket+".missing" }, CRConnectionError, SSUnknownSQLState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := serverConfig(s)
			tt.mod(&cfg)
			c, err := Connect(context.Background(), cfg)
			var se *SQLError
			if !errors.As(err, &se) || se.Num != tt.wantNum || se.State != tt.wantState {
				t.Fatalf("got %v (%v), want errno %d sqlstate %s", err, c, tt.wantNum, tt.wantState)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Connect(ctx, serverConfig(s)); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

// vtgateErrno is the regexp vtgate uses to recover errno and sqlstate from a
// tablet's error message (go/mysql/sqlerror/sql_error.go).
var vtgateErrno = regexp.MustCompile(`\(errno ([0-9]*)\) \(sqlstate ([0-9a-zA-Z]{5})\)`)

func TestServerErrors(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	s.Exec(t, "CREATE DATABASE e", "CREATE TABLE e.t (id int primary key)", "INSERT INTO e.t VALUES (1)")
	c := connect(t, s, func(c *Config) { c.DBName = "e" })
	tests := []struct {
		sql       string
		wantNum   uint16
		wantState string
	}{
		{"selec 1", ERParseError, "42000"},
		{"insert into t values (1)", ERDupEntry, "23000"},
		{"select * from nosuch", 1146, "42S02"},
		{"select 1; select 2", ERParseError, "42000"}, // no CLIENT_MULTI_STATEMENTS
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			_, err := c.Execute(context.Background(), tt.sql, 0, FieldsAll)
			var se *SQLError
			if !errors.As(err, &se) || se.Num != tt.wantNum || se.State != tt.wantState {
				t.Fatalf("got %v, want errno %d sqlstate %s", err, tt.wantNum, tt.wantState)
			}
			m := vtgateErrno.FindStringSubmatch(err.Error())
			if m == nil || m[1] != strconv.Itoa(int(tt.wantNum)) || m[2] != tt.wantState {
				t.Fatalf("vtgate cannot parse %q", err.Error())
			}
			if c.IsClosed() {
				t.Fatal("a server error closed the connection")
			}
			if got := value(exec(t, c, "select 7").Rows[0], 0); got != "7" {
				t.Fatalf("next statement returned %q", got)
			}
		})
	}
}

func TestDML(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	s.Exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id int auto_increment primary key, v int, unique key (v))")
	c := connect(t, s, func(c *Config) { c.DBName, c.QueryInfo = "d", true })
	found := connect(t, s, func(c *Config) { c.DBName, c.ClientFoundRows, c.QueryInfo = "d", true, true })
	noInfo := connect(t, s, func(c *Config) { c.DBName = "d" })
	tests := []struct {
		name         string
		conn         *Conn
		sql          string
		wantAffected uint64
		wantInsertID uint64
		wantInfo     string
		wantWarnings uint16
		wantInTrans  bool
	}{
		{"insert", c, "insert into t (v) values (10)", 1, 1, "", 0, false},
		{"multi-row insert", c, "insert into t (v) values (20), (30), (40)", 3, 2, "Records: 3  Duplicates: 0  Warnings: 0", 0, false},
		{"update", c, "update t set v = v + 1 where id = 1", 1, 0, "Rows matched: 1  Changed: 1  Warnings: 0", 0, false},
		{"update to the same value", c, "update t set v = 11 where id = 1", 0, 0, "Rows matched: 1  Changed: 0  Warnings: 0", 0, false},
		{"found rows", found, "update t set v = 11 where id = 1", 1, 0, "Rows matched: 1  Changed: 0  Warnings: 0", 0, false},
		{"insert ignore duplicate", c, "insert ignore into t (v) values (11)", 0, 0, "", 1, false},
		{"info not kept by default", noInfo, "update t set v = 11 where id = 1", 0, 0, "", 0, false},
		{"begin", c, "begin", 0, 0, "", 0, true},
		{"delete in transaction", c, "delete from t where id > 2", 2, 0, "", 0, true},
		{"commit", c, "commit", 0, 0, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qr := exec(t, tt.conn, tt.sql)
			if qr.RowsAffected != tt.wantAffected || qr.InsertId != tt.wantInsertID || qr.InsertIdChanged != (tt.wantInsertID > 0) ||
				qr.Info != tt.wantInfo || len(qr.Fields) != 0 || len(qr.Rows) != 0 {
				t.Fatalf("got %v, want affected %d insert_id %d info %q", qr, tt.wantAffected, tt.wantInsertID, tt.wantInfo)
			}
			if tt.conn.LastWarnings() != tt.wantWarnings {
				t.Errorf("LastWarnings = %d, want %d", tt.conn.LastWarnings(), tt.wantWarnings)
			}
			if inTrans := tt.conn.LastStatusFlags()&StatusInTrans != 0; inTrans != tt.wantInTrans {
				t.Errorf("in transaction = %v, want %v", inTrans, tt.wantInTrans)
			}
		})
	}
}

func TestRowsExceeded(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	c := connect(t, s, useMySQL)
	tests := []struct {
		maxRows int
		wantErr bool
	}{
		{0, false}, {1000, false}, {999, true}, {1, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.maxRows), func(t *testing.T) {
			qr, err := c.Execute(context.Background(), "select seq from seq_1_to_1000", tt.maxRows, FieldsTypeAndName)
			if tt.wantErr != errors.Is(err, ErrRowsExceeded) || (!tt.wantErr && (err != nil || len(qr.Rows) != 1000)) {
				t.Fatalf("maxRows %d: %v", tt.maxRows, err)
			}
			if got := value(exec(t, c, "select 'still usable'").Rows[0], 0); got != "still usable" {
				t.Fatalf("next statement returned %q", got)
			}
		})
	}
}

func TestMultipleResults(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	s.Exec(t, "CREATE DATABASE m", "CREATE TABLE m.t (id int)",
		"CREATE PROCEDURE m.with_result() BEGIN SELECT 1; END",
		"CREATE PROCEDURE m.without_result() BEGIN INSERT INTO m.t VALUES (1); END")
	c := connect(t, s, func(c *Config) { c.DBName, c.MultiStatements = "m", true })
	tests := []struct {
		sql      string
		wantErr  error
		wantNum  uint16
		affected uint64
	}{
		{"select 1; select 2", ErrMultipleResults, 0, 0},
		{"select 1; select * from nosuch; select 3", ErrMultipleResults, 1146, 0},
		{"call with_result()", ErrMultipleResults, 0, 0},
		{"call without_result()", nil, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			qr, err := c.Execute(context.Background(), tt.sql, 0, FieldsAll)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			var se *SQLError
			if tt.wantNum != 0 && (!errors.As(err, &se) || se.Num != tt.wantNum) {
				t.Errorf("%v: want errno %d too", err, tt.wantNum)
			}
			if err == nil && qr.RowsAffected != tt.affected {
				t.Errorf("rows affected %d, want %d", qr.RowsAffected, tt.affected)
			}
			if got := value(exec(t, c, "select 'in sync'").Rows[0], 0); got != "in sync" {
				t.Fatalf("next statement returned %q", got)
			}
		})
	}
}

func TestStreamServer(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	c := connect(t, s, useMySQL)
	const n = 100000
	var msgs, rows int
	err := c.Stream(context.Background(), "select seq, concat('row-', seq) from seq_1_to_100000", FieldsAll, 0,
		func(qr *querypb.QueryResult) error {
			msgs++
			if msgs == 1 {
				if len(qr.Fields) != 2 || qr.Fields[0].Type != querypb.Type_UINT64 || len(qr.Rows) != 0 {
					t.Errorf("first message is not the fields: %v", qr)
				}
				return nil
			}
			size := 0
			for _, r := range qr.Rows {
				rows++
				if want := strconv.Itoa(rows); value(r, 0) != want || value(r, 1) != "row-"+want {
					t.Fatalf("row %d = %q, %q", rows, value(r, 0), value(r, 1))
				}
				size += len(r.Values)
			}
			if size < DefaultStreamBufferSize && rows != n {
				t.Errorf("batch of %d bytes before the end", size)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || msgs < 10 {
		t.Fatalf("%d rows in %d messages", rows, msgs)
	}
	t.Logf("%d rows in %d messages", rows, msgs)
}

func TestLargePackets(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	s.Exec(t, "SET GLOBAL max_allowed_packet = 64*1024*1024")
	c := connect(t, s, nil)
	const size = 17 << 20 // more than one 16 MiB packet
	t.Run("row", func(t *testing.T) {
		qr := exec(t, c, "select repeat('a', "+strconv.Itoa(size)+"), 'end'")
		if v := value(qr.Rows[0], 0); len(v) != size || strings.Trim(v, "a") != "" || value(qr.Rows[0], 1) != "end" {
			t.Fatalf("got a %d-byte value", len(v))
		}
	})
	t.Run("query", func(t *testing.T) {
		qr := exec(t, c, "select length('"+strings.Repeat("b", size)+"')")
		if v := value(qr.Rows[0], 0); v != strconv.Itoa(size) {
			t.Fatalf("server saw %s bytes", v)
		}
	})
	if len(c.w.buf) > maxKeptBuffer || cap(c.w.wbuf) > maxKeptBuffer {
		t.Errorf("buffers not released: %d, %d", len(c.w.buf), cap(c.w.wbuf))
	}
}
