package schema

import (
	"errors"
	"hash/crc64"
	"math"
	"testing"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func validConfig() Config {
	c := DefaultConfig()
	c.DBName = "vt_commerce"
	conn := mysqlconn.Config{Address: "127.0.0.1:3306", User: "vt_dba"}
	c.Dba, c.AllPrivs, c.App = conn, conn, conn
	c.App.DBName = c.DBName
	return c
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"no database", func(c *Config) { c.DBName = "" }, false},
		{"no sidecar", func(c *Config) { c.SidecarDBName = "" }, false},
		{"lock timeout", func(c *Config) { c.LockTablesTimeout = 0 }, false},
		{"concurrency", func(c *Config) { c.SchemaConcurrency = 0 }, false},
		{"dba selects a database", func(c *Config) { c.Dba.DBName = "vt_commerce" }, false},
		{"allprivs without user", func(c *Config) { c.AllPrivs.User = "" }, false},
		{"app address", func(c *Config) { c.App.Address = "nohostport" }, false},
	} {
		c := validConfig()
		tc.mod(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if _, err := New(c, Deps{}); (err == nil) != tc.ok {
			t.Errorf("%s: New() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestMaxRows(t *testing.T) {
	for in, want := range map[uint64]int{0: 0, 1: 1, 10000: 10000, math.MaxInt64: math.MaxInt64, math.MaxInt64 + 1: -1, math.MaxUint64: -1} {
		if got := maxRows(in); got != want {
			t.Errorf("maxRows(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestStoppedNamesTheStatement(t *testing.T) {
	cause := &mysqlconn.SQLError{Num: 1146, State: "42S02", Message: "Table 'x.y' doesn't exist"}
	coded := sqlError(cause, "select * from y")
	for _, tc := range []struct {
		i, n int
		want string
	}{
		{0, 1, "Table 'x.y' doesn't exist (errno 1146) (sqlstate 42S02) during query: select * from y"},
		{0, 3, "R: statement 1 of 3 failed (no statement before it ran): Table 'x.y' doesn't exist (errno 1146) (sqlstate 42S02) during query: select * from y"},
		{1, 3, "R: statement 2 of 3 failed (statement 1 ran and is not undone): Table 'x.y' doesn't exist (errno 1146) (sqlstate 42S02) during query: select * from y"},
		{2, 3, "R: statement 3 of 3 failed (statements 1-2 ran and are not undone): Table 'x.y' doesn't exist (errno 1146) (sqlstate 42S02) during query: select * from y"},
	} {
		err := stopped("R", tc.i, tc.n, coded)
		if err.Error() != tc.want {
			t.Errorf("stopped(%d, %d):\n got %q\nwant %q", tc.i, tc.n, err, tc.want)
		}
		if rpcerr.Code(err) != vtrpcpb.Code_NOT_FOUND {
			t.Errorf("code %v, want NOT_FOUND", rpcerr.Code(err))
		}
		if n, _, ok := rpcerr.Errno(err); !ok || n != 1146 {
			t.Errorf("errno %d %v, want 1146", n, ok)
		}
	}
}

func TestPermissionsHideHashes(t *testing.T) {
	fields := []*querypb.Field{{Name: "Host"}, {Name: "User"}, {Name: "Password"}, {Name: "Select_priv"},
		{Name: "authentication_string"}, {Name: "password_last_changed"}, {Name: "max_statement_time"}}
	hash := "*0D3CED9BEC10A777AEC23CCC353A8C08A633045E"
	up := userPermission(fields, []value{{s: "%"}, {s: "vt_dba"}, {s: hash}, {s: "Y"}, {s: hash}, {s: "2024-01-01"}, {null: true}})
	if up.Host != "%" || up.User != "vt_dba" {
		t.Fatalf("key %q@%q", up.User, up.Host)
	}
	if want := crc64.Checksum([]byte(hash), crc64.MakeTable(crc64.ISO)); up.PasswordChecksum != want || want == 0 {
		t.Errorf("checksum %d, want %d", up.PasswordChecksum, want)
	}
	want := map[string]string{"Select_priv": "Y", "max_statement_time": ""}
	if len(up.Privileges) != len(want) {
		t.Errorf("privileges %v, want %v", up.Privileges, want)
	}
	for k, v := range want {
		if up.Privileges[k] != v {
			t.Errorf("privilege %s = %q, want %q", k, up.Privileges[k], v)
		}
	}
	dp := dbPermission([]*querypb.Field{{Name: "Host"}, {Name: "Db"}, {Name: "User"}, {Name: "Insert_priv"}},
		[]value{{s: "localhost"}, {s: "vt_commerce"}, {s: "vt_app"}, {s: "N"}})
	if dp.Host != "localhost" || dp.Db != "vt_commerce" || dp.User != "vt_app" || len(dp.Privileges) != 1 || dp.Privileges["Insert_priv"] != "N" {
		t.Errorf("db permission %v", dp)
	}
}

func TestClosedEngineRefusesLocks(t *testing.T) {
	e, err := New(validConfig(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if err := e.LockTables(t.Context()); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_UNAVAILABLE)) {
		t.Fatalf("LockTables after Close: %v, want UNAVAILABLE", err)
	}
	if err := e.UnlockTables(t.Context()); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_FAILED_PRECONDITION)) {
		t.Fatalf("UnlockTables without a lock: %v, want FAILED_PRECONDITION", err)
	}
}
