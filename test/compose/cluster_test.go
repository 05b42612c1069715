//go:build compose

// Package compose_test runs the deploy/compose cluster (images from make image) and tests it
// across its containers: a writer through vtgate records every acknowledged write while
// containers are killed, paused, cut off the network and restarted. make compose-test runs it
// (scripts/compose-test.sh), with a project of its own and host ports Docker chooses, and
// removes the cluster afterwards whatever happens.
package compose_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// cluster is one compose project.
type cluster struct {
	t       *testing.T
	project string
	env     []string
	vtgate  *sql.DB
	secret  string // the vt_* users' password
	mu      sync.Mutex
	results map[string]string
}

func script() string { return filepath.Join("..", "..", "scripts", "compose.sh") }

func (c *cluster) run(args ...string) (string, error) {
	cmd := exec.Command(script(), args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("compose.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) docker(args ...string) {
	c.t.Helper()
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (c *cluster) container(service string) string { return c.project + "_" + service + "_1" }

func (c *cluster) hostPort(service string, port int) string {
	c.t.Helper()
	out := strings.TrimSpace(c.must("dc", "port", service, fmt.Sprint(port)))
	if out == "" {
		c.t.Fatalf("no host port for %s:%d", service, port)
	}
	return strings.Split(out, "\n")[0]
}

func (c *cluster) tryCtl(args ...string) (string, error) {
	return c.run(append([]string{"dc", "exec", "-T", "vtctld", "vtctldclient", "--server", "localhost:15999"}, args...)...)
}

func (c *cluster) ctl(args ...string) string {
	c.t.Helper()
	out, err := c.tryCtl(args...)
	if err != nil {
		c.t.Fatalf("vtctldclient %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) record(name string, d time.Duration) {
	c.mu.Lock()
	c.results[name] = d.Round(10 * time.Millisecond).String()
	c.mu.Unlock()
	c.t.Logf("RECOVERY %s: %v", name, d.Round(10*time.Millisecond))
}

func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startCluster brings a cluster up with scripts/compose.sh (what make compose-up runs).
func startCluster(t *testing.T) *cluster {
	project := os.Getenv("COMPOSE_PROJECT_NAME")
	if project == "" {
		project = fmt.Sprintf("tabletdtest%d", os.Getpid())
	}
	secrets, err := os.MkdirTemp("", "tabletd-compose-secrets")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, project: project, results: map[string]string{}}
	c.env = append(os.Environ(), "COMPOSE_PROJECT_NAME="+project, "TABLETD_SECRETS="+secrets)
	for _, v := range []string{"VTGATE_MYSQL_PORT", "VTGATE_PORT", "VTCTLD_PORT", "VTCTLD_GRPC_PORT", "TABLETD1_PORT", "TABLETD2_PORT",
		"TABLETD3_PORT", "MARIADB1_PORT", "MARIADB2_PORT", "MARIADB3_PORT", "BACKUP1_PORT", "BACKUP2_PORT", "BACKUP1_MYSQL_PORT", "BACKUP2_MYSQL_PORT"} {
		c.env = append(c.env, v+"=") // Docker picks free host ports: other clusters may run beside
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run("dc", "--profile", "backup", "logs", "--tail", "40")
			t.Logf("cluster logs (tail):\n%s", out)
		}
		out, err := c.run("down")
		t.Logf("compose.sh down: %v %s", err, strings.TrimSpace(out))
	})
	start := time.Now()
	t.Logf("%s", c.must("up"))
	c.record("compose up (to three tablets serving)", time.Since(start))
	b, err := os.ReadFile(filepath.Join(secrets, "vt-password"))
	if err != nil {
		t.Fatal(err)
	}
	c.secret = string(b)
	c.vtgate, err = sql.Open("mysql", "user@tcp("+c.hostPort("vtgate", 15306)+")/commerce")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.vtgate.Close() })
	return c
}

// mysqlOf opens the MariaDB of a service through its host port as vt_dba, closed when the
// current (sub)test ends.
func (c *cluster) mysqlOf(service string) *sql.DB {
	c.t.Helper()
	db := c.openMySQL(service)
	c.t.Cleanup(func() { db.Close() })
	return db
}

// reopen replaces dbs[uid] after its MariaDB container was restarted (Docker gives it a new
// host port); the caller of TestCluster closes what dbs holds at the end.
func (c *cluster) reopen(dbs map[int]*sql.DB, uid int) {
	c.t.Helper()
	old := dbs[uid]
	dbs[uid] = c.openMySQL(fmt.Sprintf("mariadb%d", uid-100))
	old.Close()
}

// openMySQL opens the MariaDB of a service through its host port as vt_dba; the caller
// closes it.
func (c *cluster) openMySQL(service string) *sql.DB {
	c.t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("vt_dba:%s@tcp(%s)/?timeout=2s&readTimeout=5s", c.secret, c.hostPort(service, 3306)))
	if err != nil {
		c.t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	return db
}

// tabletStates is vtgate's view: alias -> "TYPE STATE".
func (c *cluster) tabletStates() map[string]string {
	rows, err := c.vtgate.Query("SHOW VITESS_TABLETS")
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var cell, ks, shard, typ, state, alias, host string
		var pts sql.NullString
		if rows.Scan(&cell, &ks, &shard, &typ, &state, &alias, &host, &pts) == nil {
			out[alias] = typ + " " + state
		}
	}
	return out
}

func (c *cluster) waitState(alias, want string, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, alias+" "+want+" in vtgate", func() bool { return c.tabletStates()[alias] == want })
}

// primary is the uid (101…) the shard record names.
func (c *cluster) primary() int {
	c.t.Helper()
	m := regexp.MustCompile(`"primary_alias":\s*\{[^}]*"uid":\s*(\d+)`).FindStringSubmatch(c.ctl("GetShard", "commerce/0"))
	if m == nil {
		c.t.Fatal("no primary in the shard record")
	}
	var uid int
	fmt.Sscan(m[1], &uid)
	return uid
}

// writer inserts through vtgate, one statement at a time, and records what was acknowledged.
type writer struct {
	db         *sql.DB
	next       *atomic.Int64
	stop, done chan struct{}
	mu         sync.Mutex
	acked      []int64
	ackAt      []time.Time
	errors     []string
}

var ids atomic.Int64

func (c *cluster) startWriter() *writer {
	w := &writer{db: c.vtgate, next: &ids, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			id := w.next.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := w.db.ExecContext(ctx, "INSERT INTO writes (id, note) VALUES (?, 'w')", id)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked, w.ackAt = append(w.acked, id), append(w.ackAt, time.Now())
			} else {
				w.errors = append(w.errors, fmt.Sprintf("%s id %d: %v", time.Now().Format("15:04:05.000"), id, err))
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	c.t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }

func (w *writer) failures() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errors...)
}

func (w *writer) waitAcks(t *testing.T, n int, what string) {
	t.Helper()
	target := w.count() + n
	eventually(t, 90*time.Second, what, func() bool { return w.count() >= target })
}

// longestGapAfter is the longest time between two successive acknowledgements after since
// (the first measured from since): how long writes were unavailable.
func (w *writer) longestGapAfter(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var most time.Duration
	prev := since
	for _, at := range w.ackAt {
		if !at.After(since) {
			continue
		}
		most = max(most, at.Sub(prev))
		prev = at
	}
	return most
}

// checkNoLoss asserts every acknowledged id is in db's vt_commerce.writes.
func (w *writer) checkNoLoss(t *testing.T, db *sql.DB, where string) {
	t.Helper()
	w.mu.Lock()
	acked := append([]int64(nil), w.acked...)
	w.mu.Unlock()
	have := map[int64]bool{}
	read := func() bool {
		rows, err := db.Query("SELECT id FROM vt_commerce.writes")
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil {
				have[id] = true
			}
		}
		for _, id := range acked {
			if !have[id] {
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(60 * time.Second); !read() && time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
	}
	var lost []int64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes missing on %s after 60s: %v; its replication: %s", len(lost), len(acked), where,
			lost[:min(20, len(lost))], replicationStatus(db))
	}
	t.Logf("%s holds all %d acknowledged writes", where, len(acked))
}

// replicationStatus is what SHOW ALL SLAVES STATUS says of db's replication (for failures).
func replicationStatus(db *sql.DB) string {
	rows, err := db.Query("SHOW ALL SLAVES STATUS")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if rows.Scan(ptrs...) != nil {
			continue
		}
		for i, c := range cols {
			switch c {
			case "Master_Host", "Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error", "Gtid_IO_Pos", "Seconds_Behind_Master":
				out = append(out, c+"="+vals[i].String)
			}
		}
	}
	var pos, binlog string
	_ = db.QueryRow("SELECT @@global.gtid_slave_pos, @@global.gtid_binlog_pos").Scan(&pos, &binlog)
	out = append(out, "gtid_slave_pos="+pos, "gtid_binlog_pos="+binlog)
	return strings.Join(out, " ")
}

func (c *cluster) writeResults() {
	path := os.Getenv("COMPOSE_RESULTS")
	if path == "" {
		return
	}
	b, _ := json.MarshalIndent(c.results, "", "  ")
	_ = os.WriteFile(path, append(b, '\n'), 0o644)
}

func execDocker(args ...string) error { return exec.Command("docker", args...).Run() }
