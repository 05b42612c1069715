//go:build interop

package interop

import (
	"context"
	"crypto/des"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// The VReplication flows of the Vitess examples (commerce → customer MoveTables, customer
// 0 → -80,80- Reshard) with an unmodified vtctld and vtgate, tabletd on every tablet, and the
// same MoveTables with Vitess's vttablet on one side.

// vrTablet is the primary of one shard: MariaDB with tabletd or vttablet beside it.
type vrTablet struct {
	uid             int
	alias           string
	keyspace, shard string
	db              *mariadbtest.Server
	root            *sql.DB
	vttablet        bool
	tab             *tabletd // tabletd only
	args            []string // the tablet's command line (tabletd: restart)
	httpPort        int
	grpcPort        int
}

func (v *vrTablet) dbName() string { return "vt_" + v.keyspace }

// startTabletdIn starts tabletd as zone1-<uid> of keyspace/shard on db.
func (c *cluster) startTabletdIn(v *vrTablet, extra ...string) {
	t := c.t
	t.Helper()
	tab := &tabletd{grpcPort: freePort(t), httpPort: freePort(t), exited: make(chan error, 1)}
	if v.args == nil {
		v.args = append(c.topoFlags(), "--tablet-path", fmt.Sprintf("zone1-%d", v.uid), "--tablet-hostname", "127.0.0.1",
			"--init-keyspace", v.keyspace, "--init-shard", v.shard, "--init-tablet-type", "REPLICA",
			"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(v.db.Port),
			"--db-dba-user", "vt_dba", "--db-dba-password", mariadbtest.Password,
			"--db-app-user", "vt_app", "--db-app-password", mariadbtest.Password,
			"--db-allprivs-user", "vt_allprivs", "--db-allprivs-password", mariadbtest.Password,
			"--db-filtered-user", "vt_filtered", "--db-filtered-password", mariadbtest.Password,
			"--db-repl-user", "vt_repl", "--db-repl-password", mariadbtest.Password,
			"--port", fmt.Sprint(tab.httpPort), "--grpc-port", fmt.Sprint(tab.grpcPort),
			"--service-map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
			"--health-check-interval", healthInterval.String(), "--vreplication-retry-delay", "1s")
		v.args = append(v.args, extra...)
		v.httpPort, v.grpcPort = tab.httpPort, tab.grpcPort
	}
	tab.cmd = exec.Command(c.tabletd, v.args...)
	logName := filepath.Join(c.dir, fmt.Sprintf("tabletd-%d.log", v.uid))
	logf, _ := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	tab.cmd.Stdout, tab.cmd.Stderr = logf, logf
	tab.started = time.Now()
	if err := tab.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tab.exited <- tab.cmd.Wait() }()
	v.tab = tab
	t.Cleanup(func() {
		_ = tab.cmd.Process.Kill()
		<-tab.exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logName)
			t.Logf("tabletd %s log (tail):\n%s", v.alias, tail(b, 6000))
		}
	})
}

// killTabletd kills tabletd (SIGKILL) and waits for it to be gone.
func (v *vrTablet) killTabletd(t *testing.T) {
	t.Helper()
	_ = v.tab.cmd.Process.Kill()
	err := <-v.tab.exited
	v.tab.exited <- err
}

// startVttabletIn starts Vitess's vttablet as zone1-<uid> of keyspace/shard on db.
func (c *cluster) startVttabletIn(v *vrTablet) {
	c.t.Helper()
	v.httpPort, v.grpcPort = freePort(c.t), freePort(c.t)
	args := []string{"--tablet-path", fmt.Sprintf("zone1-%d", v.uid), "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", v.keyspace, "--init-shard", v.shard, "--init-tablet-type", "REPLICA", "--unmanaged",
		"--db-host", "127.0.0.1", "--db-port", fmt.Sprint(v.db.Port), "--init-db-name-override", v.dbName(),
		"--port", fmt.Sprint(v.httpPort), "--grpc-port", fmt.Sprint(v.grpcPort),
		"--service-map", "grpc-queryservice,grpc-tabletmanager", "--health-check-interval", healthInterval.String(),
		"--vreplication-retry-delay", "1s"}
	for _, r := range []string{"app", "appdebug", "allprivs", "dba", "filtered", "repl", "erepl"} {
		args = append(args, "--db-"+r+"-user", "vt_"+r, "--db-"+r+"-password", mariadbtest.Password, "--db-"+r+"-use-ssl=false")
	}
	name := fmt.Sprintf("vttablet-%d", v.uid)
	full := append([]string{"-u", "vt", "--", filepath.Join(c.bin, "vttablet")}, c.topoFlags()...)
	full = append(append(full, "--log_dir", c.dir), args...)
	c.launch(name, exec.Command("runuser", full...))
	c.t.Cleanup(func() {
		if c.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(c.dir, name+".out"))
			c.t.Logf("vttablet %s output (tail):\n%s", v.alias, tail(b, 4000))
		}
	})
}

// vrPrimary starts a MariaDB and a tablet (tabletd, or vttablet when vt) and makes it the
// primary of keyspace/shard with InitShardPrimary.
func (c *cluster) vrPrimary(uid int, keyspace, shard string, vt bool, extra ...string) *vrTablet {
	c.t.Helper()
	return c.vrPrimaryOn(nil, uid, keyspace, shard, vt, extra...)
}

// vrPrimaryOn is vrPrimary with extra mariadbd arguments.
func (c *cluster) vrPrimaryOn(mysqlArgs []string, uid int, keyspace, shard string, vt bool, extra ...string) *vrTablet {
	t := c.t
	t.Helper()
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: append([]string{"--tmpdir=" + t.TempDir()}, mysqlArgs...)})
	v := &vrTablet{uid: uid, alias: fmt.Sprintf("zone1-%010d", uid), keyspace: keyspace, shard: shard, db: db, root: db.RootDB(t), vttablet: vt}
	if vt {
		c.startVttabletIn(v)
	} else {
		c.startTabletdIn(v, extra...)
	}
	eventually(t, 90*time.Second, v.alias+" registered", func() bool {
		out, err := c.tryCtl("GetTablets", "--keyspace", keyspace, "--shard", shard)
		return err == nil && strings.Contains(out, v.alias)
	})
	c.ctl("InitShardPrimary", "--force", keyspace+"/"+shard, v.alias)
	c.waitState(v.alias, "PRIMARY SERVING", 60*time.Second)
	return v
}

// The Vitess examples' schema, with secondary keys so that defer_secondary_keys has work.
var commerceSchema = []string{
	"create table product (sku varbinary(128), description varbinary(128), price bigint, primary key (sku))",
	"create table customer (customer_id bigint not null auto_increment, email varbinary(128), primary key (customer_id), key idx_email (email))",
	"create table corder (order_id bigint not null auto_increment, customer_id bigint, sku varbinary(128), price bigint, " +
		"primary key (order_id), key idx_customer (customer_id))",
}

const commerceVSchema = `{"tables": {"product": {}, "customer": {}, "corder": {}}}`

// customerShardedVSchema is the Vitess example's sharded customer keyspace.
const customerShardedVSchema = `{"sharded": true, "vindexes": {"hash": {"type": "hash"}},
 "tables": {"customer": {"column_vindexes": [{"column": "customer_id", "name": "hash"}]},
            "corder": {"column_vindexes": [{"column": "customer_id", "name": "hash"}]}}}`

// gate opens a connection to vtgate with a default keyspace.
func (c *cluster) gate(t *testing.T, keyspace string) *sql.DB {
	db, err := sql.Open("mysql", fmt.Sprintf("user@tcp(127.0.0.1:%d)/%s", c.vtgateMySQLPort, keyspace))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

// loadCommerce creates the schema and n customers with 3 orders each through vtgate.
func (c *cluster) loadCommerce(t *testing.T, n int) {
	t.Helper()
	c.ctl("ApplySchema", "--sql", strings.Join(commerceSchema, ";"), "commerce")
	c.ctl("ApplyVSchema", "--vschema", commerceVSchema, "commerce")
	g := c.gate(t, "commerce")
	eventually(t, 30*time.Second, "vtgate sees the commerce tables", func() bool {
		_, err := g.Exec("select count(*) from customer")
		return err == nil
	})
	for i := 0; i < n; i += 200 {
		var cust, ord []string
		for j := i + 1; j <= min(i+200, n); j++ {
			cust = append(cust, fmt.Sprintf("(%d, 'user%d@example.com')", j, j))
			for k := 0; k < 3; k++ {
				ord = append(ord, fmt.Sprintf("(%d, %d, 'SKU-%d', %d)", 3*j+k, j, k, 10*k+j%7))
			}
		}
		mustExec(t, g, "insert into customer (customer_id, email) values "+strings.Join(cust, ","))
		mustExec(t, g, "insert into corder (order_id, customer_id, sku, price) values "+strings.Join(ord, ","))
	}
	mustExec(t, g, "insert into product (sku, description, price) values ('SKU-0', 'zero', 10), ('SKU-1', 'one', 20), ('SKU-2', 'two', 30)")
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// tableSum is a table's row count and an order-independent checksum of its rows.
type tableSum struct {
	rows int64
	sum  string
}

var checksumColumns = map[string]string{
	"customer": "customer_id, email",
	"corder":   "order_id, customer_id, sku, price",
	"product":  "sku, description, price",
}

// sums reads count and checksum of table in the given tablets' databases, added up (the
// shards of a keyspace).
func sums(t *testing.T, table string, vs ...*vrTablet) tableSum {
	t.Helper()
	var total tableSum
	var n, s int64
	for _, v := range vs {
		var rows, sum sql.NullInt64
		q := fmt.Sprintf("select count(*), sum(crc32(concat_ws('#', %s))) from %s.%s", checksumColumns[table], v.dbName(), table)
		if err := v.root.QueryRow(q).Scan(&rows, &sum); err != nil {
			t.Fatalf("%s on %s: %v", q, v.alias, err)
		}
		n, s = n+rows.Int64, s+sum.Int64
	}
	total.rows, total.sum = n, fmt.Sprint(s)
	return total
}

// waitSame waits until table has the same rows on the source tablets and the target
// tablets (the stream caught up), then returns the row count.
func waitSame(t *testing.T, table string, src, dst []*vrTablet) int64 {
	t.Helper()
	var a, b tableSum
	eventually(t, 90*time.Second, table+" identical on source and target", func() bool {
		a, b = sums(t, table, src...), sums(t, table, dst...)
		return a == b
	})
	return a.rows
}

// workflowStates returns the state of every stream of a workflow, as vtctld reports them.
func (c *cluster) workflowStates(t *testing.T, keyspace, workflow string) []string {
	t.Helper()
	out, err := c.tryCtl("Workflow", "--keyspace", keyspace, "show", "--workflow", workflow)
	if err != nil {
		return []string{"error: " + lastLine(out)}
	}
	var resp struct {
		Workflows []struct {
			ShardStreams map[string]struct {
				Streams []struct {
					State   string `json:"state"`
					Message string `json:"message"`
				} `json:"streams"`
			} `json:"shard_streams"`
		} `json:"workflows"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		return []string{"unparsable: " + err.Error()}
	}
	var states []string
	for _, wf := range resp.Workflows {
		for _, ss := range wf.ShardStreams {
			for _, s := range ss.Streams {
				st := s.State
				if s.Message != "" {
					st += " (" + s.Message + ")"
				}
				states = append(states, st)
			}
		}
	}
	sort.Strings(states)
	return states
}

// waitWorkflowState waits until every stream of the workflow is in state want.
func (c *cluster) waitWorkflowState(t *testing.T, keyspace, workflow, want string, timeout time.Duration) {
	t.Helper()
	var last []string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		last = c.workflowStates(t, keyspace, workflow)
		ok := len(last) > 0
		for _, s := range last {
			ok = ok && (s == want || strings.HasPrefix(s, want+" (") && !strings.Contains(strings.ToLower(s), "error"))
		}
		if ok {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("workflow %s.%s: streams %v, want all %s within %v", keyspace, workflow, last, want, timeout)
}

// gateWriter inserts customers through vtgate (keyspace of the session: commerce, so the
// routing rules decide where they land) and records the acknowledged ids.
type gateWriter struct {
	db       *sql.DB
	mu       sync.Mutex
	next     int64
	acked    []int64
	failures int
	stop     chan struct{}
	done     chan struct{}
}

func (c *cluster) startGateWriter(t *testing.T, firstID int64) *gateWriter {
	db, err := sql.Open("mysql", fmt.Sprintf("user@tcp(127.0.0.1:%d)/commerce", c.vtgateMySQLPort))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	w := &gateWriter{db: db, next: firstID, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			w.mu.Lock()
			id := w.next
			w.next++
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := db.ExecContext(ctx, "insert into customer (customer_id, email) values (?, ?)", id, fmt.Sprintf("w%d@example.com", id))
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
			} else {
				w.failures++
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { w.halt(); db.Close() })
	return w
}

func (w *gateWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *gateWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *gateWriter) waitAcks(t *testing.T, n int, what string) {
	t.Helper()
	target := w.count() + n
	eventually(t, 60*time.Second, what, func() bool { return w.count() >= target })
}

// checkAcked fails unless every acknowledged id is in the customer table of vs.
func (w *gateWriter) checkAcked(t *testing.T, vs ...*vrTablet) {
	t.Helper()
	w.mu.Lock()
	acked := append([]int64(nil), w.acked...)
	w.mu.Unlock()
	have := map[int64]bool{}
	for _, v := range vs {
		rows, err := v.root.Query(fmt.Sprintf("select customer_id from %s.customer where email like 'w%%'", v.dbName()))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			have[id] = true
		}
		rows.Close()
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged write %d (of %d) is missing", id, len(acked))
		}
	}
}

// deniedOnSource checks that a write to a moved table sent straight to the source tablet's
// queryservice is refused with vttablet's denied-tables error (through vtgate it would be
// buffered: vtgate buffers exactly that error during a switch).
func deniedOnSource(t *testing.T, v *vrTablet) {
	t.Helper()
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", v.grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = queryservicepb.NewQueryClient(cc).Execute(ctx, &querypb.ExecuteRequest{
		Target: &querypb.Target{Keyspace: v.keyspace, Shard: v.shard, TabletType: topodatapb.TabletType_PRIMARY},
		Query:  &querypb.BoundQuery{Sql: "insert into customer (customer_id, email) values (999999999, 'denied@example.com')"}})
	if err == nil || !strings.Contains(err.Error(), "enforce denied tables") {
		t.Fatalf("a write to customer on %s: %v, want the denied-tables error", v.alias, err)
	}
}

// routingRules returns vtctld's routing rules (JSON).
func (c *cluster) routingRules(t *testing.T) string {
	return strings.Join(strings.Fields(c.ctl("GetRoutingRules")), "")
}

func tableExists(t *testing.T, v *vrTablet, table string) bool {
	t.Helper()
	var n int
	if err := v.root.QueryRow("select count(*) from information_schema.tables where table_schema = ? and table_name = ?", v.dbName(), table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func streamRows(t *testing.T, v *vrTablet) int {
	t.Helper()
	var n int
	if err := v.root.QueryRow("select count(*) from _vt.vreplication").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// moveTables runs MoveTables create → Running → SwitchTraffic → ReverseTraffic →
// SwitchTraffic → Complete from src (commerce) to dst (customer), with writes through
// vtgate all along, checking rows at each step.
func moveTables(t *testing.T, c *cluster, src, dst *vrTablet) {
	const wf = "commerce2customer"
	mt := func(args ...string) string {
		return c.ctl(append([]string{"MoveTables", "--workflow", wf, "--target-keyspace", "customer"}, args...)...)
	}
	w := c.startGateWriter(t, 1_000_000)
	w.waitAcks(t, 20, "writes through vtgate before MoveTables")
	mt("create", "--source-keyspace", "commerce", "--tables", "customer,corder")
	w.waitAcks(t, 20, "writes through vtgate during the copy")
	c.waitWorkflowState(t, "customer", wf, "Running", 3*time.Minute)
	for _, table := range []string{"customer", "corder"} {
		n := waitSame(t, table, []*vrTablet{src}, []*vrTablet{dst})
		t.Logf("after the copy: %s has %d rows on both sides", table, n)
	}

	mt("SwitchTraffic")
	w.waitAcks(t, 20, "writes through vtgate after SwitchTraffic")
	deniedOnSource(t, src)
	before := sums(t, "customer", dst).rows
	w.waitAcks(t, 20, "more writes")
	if sums(t, "customer", dst).rows <= before {
		t.Fatal("after SwitchTraffic, writes through vtgate do not land on the target")
	}
	waitSame(t, "customer", []*vrTablet{dst}, []*vrTablet{src}) // the reverse stream

	mt("ReverseTraffic")
	w.waitAcks(t, 20, "writes through vtgate after ReverseTraffic")
	before = sums(t, "customer", src).rows
	w.waitAcks(t, 20, "more writes")
	if sums(t, "customer", src).rows <= before {
		t.Fatal("after ReverseTraffic, writes through vtgate do not land on the source")
	}
	waitSame(t, "customer", []*vrTablet{src}, []*vrTablet{dst}) // flowing back

	mt("SwitchTraffic")
	w.waitAcks(t, 20, "writes through vtgate after the second SwitchTraffic")
	w.halt()
	for _, table := range []string{"customer", "corder"} {
		waitSame(t, table, []*vrTablet{dst}, []*vrTablet{src})
	}
	w.checkAcked(t, dst)
	t.Logf("writes through vtgate: %d acknowledged, %d refused during the switches", w.count(), w.failures)

	mt("Complete")
	for _, table := range []string{"customer", "corder"} {
		if tableExists(t, src, table) {
			t.Fatalf("after Complete, the source still has table %s", table)
		}
	}
	if rr := c.routingRules(t); strings.Contains(rr, "customer") {
		t.Fatalf("after Complete, routing rules remain: %s", rr)
	}
	if n := streamRows(t, dst); n != 0 {
		t.Fatalf("after Complete, the target still has %d streams", n)
	}
	g := c.gate(t, "customer")
	var n int64
	if err := g.QueryRow("select count(*) from customer").Scan(&n); err != nil || n != sums(t, "customer", dst).rows {
		t.Fatalf("count through vtgate after Complete: %d, %v", n, err)
	}
}

// TestMoveTablesAndReshard is the seeds' flow with tabletd on every tablet.
func TestMoveTablesAndReshard(t *testing.T) {
	c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-min-time-between-failovers", "1s")
	src := c.vrPrimary(100, "commerce", "0", false)
	c.loadCommerce(t, 1000)
	dst := c.vrPrimary(200, "customer", "0", false)
	moveTables(t, c, src, dst)
	reshard(t, c, dst, false)
}

// TestMoveTablesMixed: a vttablet source with a tabletd target, and the reverse.
func TestMoveTablesMixed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		srcVT, dstVT bool
	}{{"vttablet-to-tabletd", true, false}, {"tabletd-to-vttablet", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-min-time-between-failovers", "1s")
			src := c.vrPrimary(100, "commerce", "0", tc.srcVT)
			c.loadCommerce(t, 500)
			dst := c.vrPrimary(200, "customer", "0", tc.dstVT)
			moveTables(t, c, src, dst)
		})
	}
}

// reshard splits customer/0 into -80 and 80- with the hash vindex: rows split by the vindex,
// none lost, none duplicated, counts through vtgate unchanged.
func reshard(t *testing.T, c *cluster, src *vrTablet, vt bool) {
	const wf = "cust2cust"
	c.ctl("ApplyVSchema", "--vschema", customerShardedVSchema, "customer")
	left := c.vrPrimary(300, "customer", "-80", vt)
	right := c.vrPrimary(400, "customer", "80-", vt)
	g := c.gate(t, "customer")
	var before int64
	if err := g.QueryRow("select count(*) from customer").Scan(&before); err != nil {
		t.Fatal(err)
	}
	rs := func(args ...string) string {
		return c.ctl(append([]string{"Reshard", "--workflow", wf, "--target-keyspace", "customer"}, args...)...)
	}
	rs("create", "--source-shards", "0", "--target-shards", "-80,80-")
	c.waitWorkflowState(t, "customer", wf, "Running", 3*time.Minute)
	for _, table := range []string{"customer", "corder"} {
		n := waitSame(t, table, []*vrTablet{src}, []*vrTablet{left, right})
		l, r := sums(t, table, left).rows, sums(t, table, right).rows
		if l == 0 || r == 0 {
			t.Fatalf("%s: %d rows in -80 and %d in 80-: the hash vindex should split them", table, l, r)
		}
		t.Logf("Reshard: %s has %d rows, %d in -80 and %d in 80-", table, n, l, r)
	}
	// Every row is in the shard its keyspace id names (Vitess's hash vindex).
	for _, v := range []*vrTablet{left, right} {
		for _, table := range []string{"customer", "corder"} {
			rows, err := v.root.Query(fmt.Sprintf("select customer_id from %s.%s", v.dbName(), table))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				_ = rows.Scan(&id)
				if low := hashKeyspaceID(uint64(id))[0] < 0x80; low != (v.shard == "-80") {
					t.Fatalf("%s with customer_id %d is in shard %s, but its keyspace id %x says otherwise", table, id, v.shard, hashKeyspaceID(uint64(id)))
				}
			}
			rows.Close()
		}
	}
	rs("SwitchTraffic")
	var after int64
	eventually(t, 30*time.Second, "count through vtgate after Reshard SwitchTraffic", func() bool {
		return g.QueryRow("select count(*) from customer").Scan(&after) == nil && after == before
	})
	mustExec(t, g, "insert into customer (customer_id, email) values (5000001, 'after-reshard@example.com')")
	rs("Complete")
	if err := g.QueryRow("select count(*) from customer").Scan(&after); err != nil || after != before+1 {
		t.Fatalf("count through vtgate after Complete: %d (want %d): %v", after, before+1, err)
	}
}

// hashKeyspaceID is Vitess's hash vindex: the id as 8 big-endian bytes, encrypted with DES
// under an all-zero key.
func hashKeyspaceID(id uint64) []byte {
	block, err := des.NewCipher(make([]byte, 8))
	if err != nil {
		panic(err)
	}
	var in, out [8]byte
	binary.BigEndian.PutUint64(in[:], id)
	block.Encrypt(out[:], in[:])
	return out[:]
}

// TestMoveTablesCancel: cancelling a running workflow leaves nothing behind: no streams or
// copy state on the target, the target's copies of the tables dropped, no routing rules,
// and the source untouched.
func TestMoveTablesCancel(t *testing.T) {
	c := newCluster(t)
	src := c.vrPrimary(100, "commerce", "0", false)
	c.loadCommerce(t, 300)
	dst := c.vrPrimary(200, "customer", "0", false)
	mt := func(args ...string) string {
		return c.ctl(append([]string{"MoveTables", "--workflow", "c2c", "--target-keyspace", "customer"}, args...)...)
	}
	before := sums(t, "customer", src)
	mt("create", "--source-keyspace", "commerce", "--tables", "customer,corder")
	c.waitWorkflowState(t, "customer", "c2c", "Running", 2*time.Minute)
	mt("cancel")
	if n := streamRows(t, dst); n != 0 {
		t.Fatalf("after cancel, %d streams remain on the target", n)
	}
	var n int
	if err := dst.root.QueryRow("select count(*) from _vt.copy_state").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after cancel, %d copy_state rows remain (%v)", n, err)
	}
	for _, table := range []string{"customer", "corder"} {
		if tableExists(t, dst, table) {
			t.Fatalf("after cancel, the target still has table %s", table)
		}
		if !tableExists(t, src, table) {
			t.Fatalf("cancel dropped the source's table %s", table)
		}
	}
	if rr := c.routingRules(t); strings.Contains(rr, "customer") {
		t.Fatalf("after cancel, routing rules remain: %s", rr)
	}
	if after := sums(t, "customer", src); after != before {
		t.Fatalf("the source changed: %v, then %v", before, after)
	}
	if out, err := c.tryCtl("Workflow", "--keyspace", "customer", "show", "--workflow", "c2c"); err == nil && strings.Contains(out, `"name": "c2c"`) {
		t.Fatalf("the workflow is still listed:\n%s", out)
	}
}

// TestVReplicationFaults: the target tabletd killed (SIGKILL) in the middle of the copy
// resumes from _vt.copy_state when it starts again; the source's mysqld restarted during
// the replication phase makes the stream fail, retry and go on from its position; a DDL on
// the source with --on-ddl EXEC reaches the target.
func TestVReplicationFaults(t *testing.T) {
	c := newCluster(t)
	src := c.vrPrimary(100, "commerce", "0", false)
	c.loadCommerce(t, 200)
	// A bigger table, so that the copy is still going when the target is killed.
	mustExec(t, c.gate(t, "commerce"), "create table big (id bigint not null primary key, pad varchar(200), key idx_pad (pad))")
	c.ctl("ApplyVSchema", "--vschema", `{"tables": {"product": {}, "customer": {}, "corder": {}, "big": {}}}`, "commerce")
	for i := 0; i < 200000; i += 5000 {
		var vals []string
		for j := i; j < i+5000; j++ {
			vals = append(vals, fmt.Sprintf("(%d, repeat('p', %d))", j, 100+j%100))
		}
		if _, err := src.root.Exec("insert into vt_commerce.big values " + strings.Join(vals, ",")); err != nil {
			t.Fatal(err)
		}
	}
	dst := c.vrPrimary(200, "customer", "0", false, "--vreplication-parallel-insert-workers", "1", "--vreplication-copy-parallel-tables", "1")
	c.ctl("MoveTables", "--workflow", "faults", "--target-keyspace", "customer", "create", "--source-keyspace", "commerce",
		"--tables", "customer,corder,big", "--on-ddl", "EXEC")
	var lastpk string
	eventually(t, 2*time.Minute, "the copy of big made progress", func() bool {
		return dst.root.QueryRow("select ifnull(lastpk, '') from _vt.copy_state where table_name = 'big'").Scan(&lastpk) == nil && lastpk != ""
	})
	dst.killTabletd(t)
	var copied int64
	_ = dst.root.QueryRow("select count(*) from vt_customer.big").Scan(&copied)
	if copied >= 200000 {
		t.Fatalf("the copy was over when the target was killed (%d rows)", copied)
	}
	c.startTabletdIn(dst)
	c.waitWorkflowState(t, "customer", "faults", "Running", 3*time.Minute)
	for _, table := range []string{"customer", "corder"} {
		waitSame(t, table, []*vrTablet{src}, []*vrTablet{dst})
	}
	var a, b sql.NullInt64
	eventually(t, 60*time.Second, "big identical on both sides", func() bool {
		_ = src.root.QueryRow("select count(*) + sum(crc32(pad)) from vt_commerce.big").Scan(&a)
		_ = dst.root.QueryRow("select count(*) + sum(crc32(pad)) from vt_customer.big").Scan(&b)
		return a == b
	})
	t.Logf("target killed after %d of 200000 rows of big; resumed and identical", copied)

	// The source's mysqld restarts while the stream replicates.
	src.db.Restart(t)
	c.waitState(src.alias, "PRIMARY SERVING", 60*time.Second)
	g := c.gate(t, "commerce")
	eventually(t, 30*time.Second, "a write through vtgate after the restart", func() bool {
		// The first statements after a restart may meet pooled connections the restart broke.
		_, err := g.Exec("insert into customer (customer_id, email) values (7000001, 'after-restart@example.com')")
		return err == nil
	})
	waitSame(t, "customer", []*vrTablet{src}, []*vrTablet{dst})

	// A DDL on the source reaches the target with on_ddl EXEC.
	c.ctl("ApplySchema", "--sql", "alter table corder add column note varchar(32)", "commerce")
	eventually(t, 60*time.Second, "the DDL reached the target", func() bool {
		var n int
		_ = dst.root.QueryRow("select count(*) from information_schema.columns where table_schema = 'vt_customer' and table_name = 'corder' and column_name = 'note'").Scan(&n)
		return n == 1
	})
	c.waitWorkflowState(t, "customer", "faults", "Running", 30*time.Second)
}
