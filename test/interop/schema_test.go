//go:build interop

package interop

import (
	"encoding/json"
	"hash/crc64"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/tabletmanager/schema"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// errnoRE is how vtctld reads a MySQL errno out of a tablet's error.
var errnoRE = regexp.MustCompile(`\(errno ([0-9]+)\) \(sqlstate ([0-9a-zA-Z]{5})\)`)

// TestSchemaCommandsThroughVtctld: an unmodified vtctldclient/vtctld applies schema changes
// (direct strategy) to a tabletd PRIMARY and reads its schema, permissions and data through
// the TabletManager schema and fetch RPCs.
func TestSchemaCommandsThroughVtctld(t *testing.T) {
	c := newCluster(t)
	// Its own tmpdir: a starting mariadbd deletes every #sql* file (other servers' internal
	// temporary tables) in its tmpdir.
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{"--tmpdir=" + t.TempDir()}})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	root := db.RootDB(t)
	c.startTabletd(db, "PRIMARY")
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	eventually(t, 30*time.Second, "the shard record names the primary", func() bool {
		out, err := c.tryCtl("GetShard", "commerce/0")
		return err == nil && strings.Contains(out, `"uid": 100`)
	})
	tableCount := func(name string) int {
		t.Helper()
		var n int
		if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'vt_commerce' AND table_name = ?", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// ApplySchema, direct strategy: ExecuteMultiFetchAsDba per statement, PrimaryPosition,
	// then ReloadSchema on the shard.
	c.ctl("ApplySchema", "--sql", "create table t1 (id bigint not null auto_increment primary key, v varchar(10)); create table t2 (id int primary key)", "commerce")
	if tableCount("t1") != 1 || tableCount("t2") != 1 {
		t.Fatal("ApplySchema did not create t1 and t2")
	}
	// Batched CREATEs arrive as one multi-statement ExecuteMultiFetchAsDba.
	c.ctl("ApplySchema", "--batch-size", "2", "--sql", "create table b1 (id int primary key); create table b2 (id int primary key); create view v1 as select id from t1", "commerce")
	if tableCount("b1") != 1 || tableCount("b2") != 1 || tableCount("v1") != 1 {
		t.Fatal("batched ApplySchema did not create b1, b2 and v1")
	}
	out, err := c.tryCtl("ApplySchema", "--sql", "create table t1 (id int)", "commerce")
	if m := errnoRE.FindStringSubmatch(out); err == nil || m == nil || m[1] != "1050" {
		t.Fatalf("ApplySchema of an existing table: %v, want errno 1050 in:\n%s", err, out)
	}
	if _, err := root.Exec("INSERT INTO vt_commerce.t1 (v) VALUES ('a'), ('b'), ('c')"); err != nil {
		t.Fatal(err)
	}

	// GetSchema: mysqlctl's normalisation, as vtctld prints it.
	sd := &tmpb.SchemaDefinition{}
	if err := protojson.Unmarshal([]byte(c.ctl("GetSchema", "--include-views", "--exclude-tables", "/^_/", "zone1-100")), sd); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, td := range sd.TableDefinitions {
		names = append(names, td.Name)
	}
	if !slices.Equal(names, []string{"b1", "b2", "t1", "t2", "v1"}) {
		t.Fatalf("GetSchema tables %q", names)
	}
	t1 := sd.TableDefinitions[2]
	wantT1 := "CREATE TABLE `t1` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `v` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	if t1.Schema != wantT1 || !slices.Equal(t1.PrimaryKeyColumns, []string{"id"}) || !slices.Equal(t1.Columns, []string{"id", "v"}) || len(t1.Fields) != 2 {
		t.Errorf("t1: %v\nwant schema %q", t1, wantT1)
	}
	if !strings.Contains(sd.DatabaseSchema, "{{.DatabaseName}}") || !strings.Contains(sd.TableDefinitions[4].Schema, "{{.DatabaseName}}.`t1`") {
		t.Errorf("database name not templated: %q / %q", sd.DatabaseSchema, sd.TableDefinitions[4].Schema)
	}
	if got := strings.Fields(c.ctl("GetSchema", "--table-names-only", "--tables", "/^t/", "zone1-100")); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("GetSchema --table-names-only --tables /^t/: %q", got)
	}

	c.ctl("ReloadSchema", "zone1-100")
	c.ctl("ReloadSchemaShard", "commerce/0")
	c.ctl("ReloadSchemaKeyspace", "commerce")

	// ExecuteFetchAsDBA: one statement, rows back; vttablet's refusal of several statements.
	var res struct {
		Rows [][]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal([]byte(c.ctl("ExecuteFetchAsDBA", "--json", "zone1-100", "select id, v from t1 order by id")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 {
		t.Errorf("ExecuteFetchAsDBA rows %s", res.Rows)
	}
	out, err = c.tryCtl("ExecuteFetchAsDBA", "zone1-100", "select 1; select 2")
	if err == nil || !strings.Contains(out, schema.MultiStatementRefusal) {
		t.Fatalf("two statements: %v, want %q in:\n%s", err, schema.MultiStatementRefusal, out)
	}
	if out, err := c.tryCtl("ExecuteFetchAsDBA", "--max-rows", "2", "zone1-100", "select id from t1"); err == nil {
		t.Fatalf("3 rows with --max-rows 2 succeeded:\n%s", out)
	}
	out, err = c.tryCtl("ExecuteFetchAsDBA", "zone1-100", "select * from nosuch")
	if m := errnoRE.FindStringSubmatch(out); err == nil || m == nil || m[1] != "1146" {
		t.Fatalf("missing table: %v, want errno 1146 in:\n%s", err, out)
	}
	c.ctl("ExecuteFetchAsDBA", "--disable-binlogs", "--reload-schema", "zone1-100", "insert into t2 values (1)")

	// GetPermissions: the users, with a checksum in place of each password hash.
	permOut := c.ctl("GetPermissions", "zone1-100")
	perms := &tmpb.Permissions{}
	if err := protojson.Unmarshal([]byte(permOut), perms); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := root.QueryRow("SELECT Password FROM mysql.user WHERE User = 'vt_dba' AND Host = '%'").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, up := range perms.UserPermissions {
		if up.User == "vt_dba" && up.Host == "%" {
			found = up.PasswordChecksum == crc64.Checksum([]byte(hash), crc64.MakeTable(crc64.ISO)) && up.Privileges["Super_priv"] == "Y"
		}
	}
	if !found || strings.Contains(permOut, strings.TrimPrefix(hash, "*")) {
		t.Fatalf("GetPermissions: vt_dba@%% with checksum found=%v, hash in output=%v:\n%s", found, strings.Contains(permOut, strings.TrimPrefix(hash, "*")), permOut)
	}
}
