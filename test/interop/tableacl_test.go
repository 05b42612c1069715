//go:build interop

package interop

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// TestTableACLThroughVtgate: vtgate passes its client's user as the immediate caller; a user
// without read permission on a table gets an error naming it, for a plain select and a join.
func TestTableACLThroughVtgate(t *testing.T) {
	// Static auth: vtgate sends each client's UserData as the immediate caller.
	users := `{"user":[{"Password":"","UserData":"user"}],"alice":[{"Password":"","UserData":"alice"}],"bob":[{"Password":"","UserData":"bob"}]}`
	c := newCluster(t, "--mysql-auth-server-impl", "static", "--mysql-auth-server-static-string", users)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce",
		"CREATE TABLE vt_commerce.secret (id int primary key)", "CREATE TABLE vt_commerce.pub (id int primary key)")
	aclFile := filepath.Join(c.dir, "acl.json")
	if err := os.WriteFile(aclFile, []byte(`{"table_groups":[
		{"name":"pub","table_names_or_prefixes":["pub"],"readers":["alice","bob"]},
		{"name":"secret","table_names_or_prefixes":["secret"],"readers":["alice"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c.startTabletd(db, "PRIMARY", "--table-acl-config", aclFile, "--queryserver-config-strict-table-acl")
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	query := func(user, q string) error {
		udb, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(127.0.0.1:%d)/commerce", user, c.vtgateMySQLPort))
		if err != nil {
			t.Fatal(err)
		}
		defer udb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, err := udb.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	}
	if err := query("alice", "select * from secret"); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := query("bob", "select * from pub"); err != nil {
		t.Fatalf("bob on pub: %v", err)
	}
	for _, q := range []string{"select * from secret", "select * from pub join secret on pub.id = secret.id"} {
		err := query("bob", q)
		if err == nil || !strings.Contains(err.Error(), "'secret'") || !strings.Contains(err.Error(), "'bob'") {
			t.Errorf("bob: %s: %v; want a denial naming bob and secret", q, err)
		} else {
			t.Logf("bob: %s: %v", q, err)
		}
	}
}
