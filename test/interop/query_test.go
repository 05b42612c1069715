//go:build interop

package interop

import (
	"context"

	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// TestQueriesThroughVtgate: a MySQL client talks to an unmodified vtgate, which routes to tabletd.
func TestQueriesThroughVtgate(t *testing.T) {
	c := newCluster(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	c.startTabletd(db, "PRIMARY")
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	ctx := context.Background()
	conn, err := c.vtgateDB.Conn(ctx) // one session: transactions and settings are per session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	exec("use commerce")
	exec("create table t (id bigint primary key, v varchar(64))")
	exec("insert into t (id, v) values (1, 'one'), (2, 'two')")
	exec("update t set v = 'TWO' where id = 2")
	exec("delete from t where id = 1")
	var v string
	if err := conn.QueryRowContext(ctx, "select v from t where id = 2").Scan(&v); err != nil || v != "TWO" {
		t.Fatalf("select after update: %q %v", v, err)
	}

	// Explicit transactions, committed and rolled back.
	exec("begin")
	exec("insert into t values (3, 'three')")
	exec("commit")
	exec("begin")
	exec("insert into t values (4, 'four')")
	exec("rollback")
	if n := count("select count(*) from t"); n != 2 {
		t.Fatalf("after commit and rollback: %d rows, want 2", n)
	}

	// Session variables (vtgate reserves a connection for them).
	exec("set sql_mode = 'NO_ENGINE_SUBSTITUTION'")
	var mode string
	if err := conn.QueryRowContext(ctx, "select @@sql_mode").Scan(&mode); err != nil || mode != "NO_ENGINE_SUBSTITUTION" {
		t.Fatalf("@@sql_mode = %q (%v)", mode, err)
	}
	exec("set sql_mode = 'STRICT_TRANS_TABLES'")

	// Streaming a large result with workload OLAP.
	exec("insert into t select seq + 100, repeat('x', 60) from seq_1_to_50000")
	exec("set workload = olap")
	rows, err := conn.QueryContext(ctx, "select id, v from t")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 50002 {
		t.Fatalf("olap stream: %d rows, %v", n, err)
	}
	rows.Close()
	exec("set workload = oltp")

	// MySQL errors arrive with their real errno.
	for _, tc := range []struct {
		q     string
		errno uint16
	}{
		{"insert into t values (2, 'dup')", 1062},
		{"select * from nosuch", 1146},
		// vtgate answers its own syntax errors; this one passes vtgate's MySQL grammar and
		// is refused by MariaDB 10.11 (no FOR SHARE), so the errno comes from the tablet.
		{"select * from t where id = 2 for share", 1064},
	} {
		_, err := conn.ExecContext(ctx, tc.q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != tc.errno {
			t.Errorf("%s: %v, want errno %d", tc.q, err, tc.errno)
		}
	}
	conn.Close()

	runSysbench(t, c)
}

// runSysbench runs sysbench oltp_read_write through vtgate and requires zero errors.
func runSysbench(t *testing.T, c *cluster) {
	t.Helper()
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make interop installs it (apt-get install sysbench)")
	}
	dur := 60
	common := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1",
		"--mysql-port=" + fmt.Sprint(c.vtgateMySQLPort), "--mysql-user=user", "--mysql-db=commerce",
		"--db-ps-mode=disable", "--tables=4", "--table-size=25000"}
	out, err := exec.Command("sysbench", append(common, "prepare")...).CombinedOutput()
	if err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	out, err = exec.Command("sysbench", append(common, "--threads=8", fmt.Sprintf("--time=%d", dur), "--report-interval=0", "run")...).CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("sysbench run: %v\n%s", err, text)
	}
	tot, ok := parseSysbenchTotals(text)
	if !ok {
		t.Fatalf("unexpected sysbench output:\n%s", text)
	}
	t.Logf("sysbench oltp_read_write through vtgate, 8 threads, %ds: %d transactions (%.2f/s), %d errors, %d reconnects",
		dur, tot.Transactions, tot.TPS, tot.IgnoredErrors, tot.Reconnects)
	if tot.IgnoredErrors != 0 || tot.Reconnects != 0 || strings.Contains(text, "FATAL") {
		t.Fatalf("sysbench saw errors:\n%s", text)
	}
}
