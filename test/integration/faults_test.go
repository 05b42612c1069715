package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// callTimeout is every faulted caller's own deadline: an answer must come before it.
const callTimeout = 20 * time.Second

// answered waits for a caller's result; a caller still waiting past its own deadline (plus
// a second for the answer to travel) is a hang.
func answered(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(callTimeout + time.Second):
		t.Fatalf("%s: no answer within the caller's deadline (%v): the call hangs", what, callTimeout)
		return nil
	}
}

// recovered waits until the tablet serves again after mysqld's restart and nothing is left
// borrowed from a pool.
func recovered(t *testing.T, q *qt, hs *healthStream) {
	t.Helper()
	hs.until(60*time.Second, "serving again after mysqld's restart", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
	waitIdle(t, q)
	eventually(t, 20*time.Second, "a query works again", func() bool {
		_, err := q.exec(t, 0, "select 1", nil)
		return err == nil
	})
	waitIdle(t, q)
}

// TestMySQLKilledMidFlight: mysqld SIGKILLed while a caller is inside Execute,
// StreamExecute, a transaction's statement, or before its Commit: the caller gets an error
// before its deadline (never a hang, never a successful Commit), the transaction's writes
// are gone after the restart, and the pools give every connection back.
func TestMySQLKilledMidFlight(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	q.mustExec(t, 0, "create table f (id int primary key, v varchar(32))", nil)
	hs := q.health(t)
	ctxFor := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), callTimeout)
	}
	begin := func(t *testing.T) int64 {
		t.Helper()
		ctx, cancel := ctxFor()
		defer cancel()
		r, err := q.qs.Begin(ctx, &querypb.BeginRequest{Target: q.target, ImmediateCallerId: q.caller})
		if err != nil {
			t.Fatal(err)
		}
		return r.TransactionId
	}
	inTx := func(t *testing.T, tx int64, sql string) {
		t.Helper()
		if _, err := q.exec(t, tx, sql, nil); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	rowCount := func(t *testing.T, id int) int {
		t.Helper()
		var n int
		if err := q.db.RootDB(t).QueryRow("SELECT COUNT(*) FROM vt_commerce.f WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		// start begins the faulted call; it returns once the call is inside MySQL (or, for
		// Commit, ready to be sent), and the channel its result arrives on.
		start func(t *testing.T) (run func() error, lostRow int)
		// running is the statement to wait for in /livequeryz before the kill ("": none).
		running string
	}{
		{name: "Execute", running: "select sleep(60) /* fault-execute */", start: func(t *testing.T) (func() error, int) {
			return func() error {
				ctx, cancel := ctxFor()
				defer cancel()
				_, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
					Query: &querypb.BoundQuery{Sql: "select sleep(60) /* fault-execute */"}})
				return err
			}, 0
		}},
		{name: "StreamExecute", running: "select sleep(60) /* fault-stream */", start: func(t *testing.T) (func() error, int) {
			return func() error {
				ctx, cancel := ctxFor()
				defer cancel()
				st, err := q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
					Query: &querypb.BoundQuery{Sql: "select sleep(60) /* fault-stream */"}})
				if err != nil {
					return err
				}
				for {
					if _, err := st.Recv(); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
				}
			}, 0
		}},
		{name: "a transaction's statement", running: "select sleep(60) /* fault-tx */", start: func(t *testing.T) (func() error, int) {
			tx := begin(t)
			inTx(t, tx, "insert into f values (3, 'in tx')")
			return func() error {
				_, err := q.exec(t, tx, "select sleep(60) /* fault-tx */", nil)
				return err
			}, 3
		}},
		{name: "Commit", start: func(t *testing.T) (func() error, int) {
			tx := begin(t)
			inTx(t, tx, "insert into f values (4, 'to commit')")
			return func() error {
				ctx, cancel := ctxFor()
				defer cancel()
				_, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: tx})
				return err
			}, 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, lost := tc.start(t)
			done := make(chan error, 1)
			if tc.running != "" {
				go func() { done <- run() }()
				waitLive(t, q, tc.running)
				q.db.Kill(t)
			} else {
				q.db.Kill(t)
				go func() { done <- run() }()
			}
			err := answered(t, tc.name, done)
			if err == nil {
				t.Fatalf("%s succeeded with mysqld killed", tc.name)
			}
			t.Logf("%s: %v (%v)", tc.name, rpcerr.Code(err), err)
			q.db.Restart(t)
			recovered(t, q, hs)
			if lost != 0 && rowCount(t, lost) != 0 {
				t.Fatalf("row %d of a transaction that failed is in the table", lost)
			}
		})
	}
}

// TestPoolStormRecovers: tiny query, stream and transaction pools under a storm of callers
// who cancel at random: callers past the pools are refused with RESOURCE_EXHAUSTED (not left
// to their deadlines), nothing else goes wrong, and afterwards every connection is back,
// MySQL runs nothing for the tablet, and each kind of call works.
func TestPoolStormRecovers(t *testing.T) {
	t.Parallel()
	q := newQT(t, func(c *tablet.Config) {
		qc := &c.Query.Query
		qc.PoolSize, qc.StreamPoolSize, qc.TxCap = 2, 2, 2
		qc.MaxWaiters = 2
		qc.QueryPoolTimeout, qc.TxPoolTimeout = 100*time.Millisecond, 100*time.Millisecond
		// A BeginExecute whose caller gave up after the transaction began leaves it open:
		// the caller never learned its ID. The transaction killer rolls it back at this
		// timeout (as vttablet's), which bounds the recovery below.
		qc.TxTimeout = 2 * time.Second
	})
	q.mustExec(t, 0, "create table s (id int primary key)", nil)
	kinds := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
				Query: &querypb.BoundQuery{Sql: "select sleep(0.2) /* storm */"}})
			return err
		},
		func(ctx context.Context) error {
			st, err := q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
				Query: &querypb.BoundQuery{Sql: "select sleep(0.2) /* storm */"}})
			if err != nil {
				return err
			}
			for {
				if _, err := st.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
		func(ctx context.Context) error {
			r, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
				Query: &querypb.BoundQuery{Sql: "select sleep(0.2) /* storm */"}})
			if err == nil && r.Error != nil {
				err = rpcerr.New(r.Error.Code, "%s", r.Error.Message)
			}
			if r.GetTransactionId() != 0 {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, cerr := q.qs.Rollback(cctx, &querypb.RollbackRequest{Target: q.target, TransactionId: r.TransactionId}); err == nil {
					err = cerr
				}
			}
			return err
		},
	}
	var mu sync.Mutex
	codes := map[vtrpcpb.Code]int{}
	var wg sync.WaitGroup
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 12; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(400))*time.Millisecond)
				err := kinds[(w+i)%len(kinds)](ctx)
				cancel()
				c := rpcerr.Code(err)
				mu.Lock()
				codes[c]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("outcomes: %v", codes)
	for c, n := range codes {
		switch c {
		case vtrpcpb.Code_OK, vtrpcpb.Code_RESOURCE_EXHAUSTED, vtrpcpb.Code_CANCELED, vtrpcpb.Code_DEADLINE_EXCEEDED:
		default:
			t.Errorf("%d calls ended with %v: only success, RESOURCE_EXHAUSTED or the caller's own deadline are expected", n, c)
		}
	}
	if codes[vtrpcpb.Code_RESOURCE_EXHAUSTED] == 0 || codes[vtrpcpb.Code_OK] == 0 {
		t.Fatalf("the storm did not exhaust the pools or nothing succeeded: %v", codes)
	}
	eventually(t, 15*time.Second, "every connection and transaction slot is back (orphans end at the transaction timeout)", func() bool {
		return q.t.QueryService().InUse() == 0
	})
	root := q.db.RootDB(t)
	eventually(t, 20*time.Second, "MySQL runs none of the storm's statements", func() bool {
		var n int
		_ = root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'select sleep(0.2) /* storm */%'").Scan(&n)
		return n == 0
	})
	for i, k := range kinds {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := k(ctx); err != nil {
			t.Errorf("after the storm, call kind %d: %v", i, err)
		}
		cancel()
	}
	waitIdle(t, q)
}

// TestEtcdStoppedDuringChangeTypeAndShutdown: with etcd down, ChangeType answers within its
// deadline and the tablet serves as the new type (the record follows once etcd is back), and
// a shutdown completes.
func TestEtcdStoppedDuringChangeTypeAndShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 500}))
	hs := r.health(t)
	hs.until(20*time.Second, "registered as REPLICA", func(m *querypb.StreamHealthResponse) bool {
		return m.Target.GetTabletType() == topodatapb.TabletType_REPLICA
	})
	var rec topodatapb.Tablet
	eventually(t, 20*time.Second, "the record exists", func() bool { return e.get(t, tabletKey(500), &rec) })

	e.etcd.Stop()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_, err := r.tm.ChangeType(ctx, &tabletmanagerdatapb.ChangeTypeRequest{TabletType: topodatapb.TabletType_RDONLY})
		done <- err
	}()
	if err := answered(t, "ChangeType with etcd down", done); err != nil {
		t.Logf("ChangeType with etcd down: %v", err)
	}
	hs.until(20*time.Second, "health says RDONLY", func(m *querypb.StreamHealthResponse) bool {
		return m.Target.GetTabletType() == topodatapb.TabletType_RDONLY
	})
	e.etcd.Restart(t)
	eventually(t, 30*time.Second, "the record says RDONLY once etcd is back", func() bool {
		return e.get(t, tabletKey(500), &rec) && rec.Type == topodatapb.TabletType_RDONLY
	})

	e.etcd.Stop()
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(60 * time.Second):
		t.Fatal("shutdown with etcd down did not complete within 60s")
	}
	e.etcd.Restart(t) // for the cleanup of the harness's client
}

// buildTabletd builds cmd/tabletd for tests that need the real process (signals, exit codes).
func buildTabletd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tabletd")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../../cmd/tabletd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon is a tabletd process.
type daemon struct {
	cmd      *exec.Cmd
	out      *syncBuffer
	exited   chan error
	httpPort int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{out: &syncBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
		d.exited <- nil
		if t.Failed() {
			t.Logf("tabletd output:\n%s", d.out.String())
		}
	})
	return d
}

// exitCode waits for the process and returns its exit code.
func (d *daemon) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatal("tabletd did not exit within 60s")
		return -1
	}
}

func tabletdArgs(e *env, db *mariadbtest.Server, host string, httpPort, grpcPort int, extra ...string) []string {
	return append([]string{"--topo-global-server-address", e.etcd.Endpoint(), "--tablet-path", "zone1-600",
		"--tablet-hostname", host, "--init-keyspace", "commerce", "--init-shard", "0", "--init-tablet-type", "PRIMARY",
		"--db-host", db.Host, "--db-port", strconv.Itoa(db.Port),
		"--db-dba-password", mariadbtest.Password, "--db-app-password", mariadbtest.Password,
		"--db-allprivs-password", mariadbtest.Password, "--db-filtered-password", mariadbtest.Password,
		"--db-repl-password", mariadbtest.Password, "--bind-address", "127.0.0.1", "--grpc-bind-address", "127.0.0.1",
		"--port", strconv.Itoa(httpPort), "--grpc-port", strconv.Itoa(grpcPort), "--health-check-interval", "1s"}, extra...)
}

func serves(httpPort int) bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/health", httpPort))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestRestartAfterSIGKILL: a tabletd killed with SIGKILL leaves its record behind; started
// again on new ports and another host name (a rescheduled pod), it takes its alias back,
// serves, and the record names the new addresses.
func TestRestartAfterSIGKILL(t *testing.T) {
	t.Parallel()
	bin := buildTabletd(t)
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	for i, host := range []string{"127.0.0.1", "localhost"} {
		httpPort, grpcPort := freeTCPPort(t), freeTCPPort(t)
		d := startDaemon(t, bin, tabletdArgs(e, db, host, httpPort, grpcPort)...)
		eventually(t, 60*time.Second, fmt.Sprintf("run %d serves", i+1), func() bool {
			select {
			case err := <-d.exited:
				d.exited <- err
				t.Fatalf("run %d exited: %v\n%s", i+1, err, d.out.String())
			default:
			}
			return serves(httpPort)
		})
		var rec topodatapb.Tablet
		eventually(t, 20*time.Second, "the record names this run's addresses", func() bool {
			return e.get(t, tabletKey(600), &rec) && rec.Hostname == host && rec.PortMap["grpc"] == int32(grpcPort) &&
				rec.PortMap["vt"] == int32(httpPort) && rec.Type == topodatapb.TabletType_PRIMARY
		})
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := d.exitCode(t); code != -1 {
			t.Fatalf("exit code %d after SIGKILL", code)
		}
	}
}

// TestBadProtectionFileAtStart: a malformed query rules or table ACL file stops the start
// with exit code 2 and a line naming the flag; nothing serves.
func TestBadProtectionFileAtStart(t *testing.T) {
	t.Parallel()
	bin := buildTabletd(t)
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"Name": "r", "Query": "(unclosed"`), 0o644); err != nil {
		t.Fatal(err)
	}
	badRegexp := filepath.Join(dir, "badre.json")
	if err := os.WriteFile(badRegexp, []byte(`[{"Name": "r", "Query": "(unclosed"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, file string }{
		{"--filecustomrules", bad}, {"--filecustomrules", badRegexp}, {"--table-acl-config", bad},
	} {
		t.Run(tc.flag+" "+filepath.Base(tc.file), func(t *testing.T) {
			httpPort := freeTCPPort(t)
			d := startDaemon(t, bin, tabletdArgs(e, db, "127.0.0.1", httpPort, freeTCPPort(t), tc.flag, tc.file)...)
			if code := d.exitCode(t); code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", code, d.out.String())
			}
			if !bytes.Contains([]byte(d.out.String()), []byte("tabletd: ")) || !bytes.Contains([]byte(d.out.String()), []byte(tc.flag)) {
				t.Fatalf("no error line naming %s:\n%s", tc.flag, d.out.String())
			}
		})
	}
}

// TestReloadsUnderLoad: the table ACL and query rules are flipped between two versions by
// SIGHUP's path and by interval reloads while callers query without pause (run with -race):
// every answer is one of the two versions' (success, the ACL's PERMISSION_DENIED, the rule's
// INVALID_ARGUMENT), both versions are seen, and a broken file on reload keeps the version in
// force.
func TestReloadsUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	aclFile, rulesFile := filepath.Join(dir, "acl.json"), filepath.Join(dir, "rules.json")
	acls := []string{
		`{"table_groups":[{"name":"all","table_names_or_prefixes":["%"],"readers":["alice"],"writers":["alice"],"admins":["alice"]}]}`,
		`{"table_groups":[{"name":"all","table_names_or_prefixes":["%"],"readers":["bob"],"writers":["alice"],"admins":["alice"]}]}`,
	}
	rules := []string{`[]`, `[{"Name":"no_scan","Description":"no scans of r","Query":"select \\* from r where id > 0"}]`}
	atomicWrite := func(path, content string) {
		if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
			t.Error(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Error(err)
		}
	}
	atomicWrite(aclFile, acls[0])
	atomicWrite(rulesFile, rules[0])
	q := newQT(t, func(c *tablet.Config) {
		c.TableACLFile, c.TableACLReloadInterval = aclFile, 20*time.Millisecond
		c.QueryRulesFile, c.QueryRulesWatch = rulesFile, true
		c.Query.ACL.Strict = true
	})
	if err := q.as("alice", "create table r (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	if err := q.as("alice", "insert into r values (1)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var seen [3]atomic.Int64 // ok, denied by the ACL, refused by the rule
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := q.as("alice", "select * from r where id > 0")
				switch code(err) {
				case vtrpcpb.Code_OK:
					seen[0].Add(1)
				case vtrpcpb.Code_PERMISSION_DENIED:
					seen[1].Add(1)
				case vtrpcpb.Code_INVALID_ARGUMENT:
					seen[2].Add(1)
				default:
					errc <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 40; i++ {
		atomicWrite(aclFile, acls[i%2])
		atomicWrite(rulesFile, rules[(i/2)%2])
		if err := q.t.ReloadTableACL(); err != nil { // SIGHUP's path
			t.Errorf("reload %d: %v", i, err)
		}
		if i == 20 {
			// A truncated file: the reload fails, the version in force stays.
			if err := os.WriteFile(aclFile, []byte(acls[0][:20]), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := q.t.ReloadTableACL(); err == nil {
				t.Error("a truncated ACL file was accepted")
			}
		}
		// Let every caller answer under this version before the next flip.
		before := seen[0].Load() + seen[1].Load() + seen[2].Load()
		eventually(t, 10*time.Second, "callers answer after the flip", func() bool {
			return seen[0].Load()+seen[1].Load()+seen[2].Load() >= before+6 || len(errc) > 0
		})
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("an answer of neither version: %v", err)
	}
	t.Logf("answers: %d allowed, %d denied by the ACL, %d refused by the rule", seen[0].Load(), seen[1].Load(), seen[2].Load())
	for i, what := range []string{"allowed", "denied by the ACL", "refused by the rule"} {
		if seen[i].Load() == 0 {
			t.Errorf("no answer %s: a version never took effect", what)
		}
	}
	// Settle on the open version: it applies.
	atomicWrite(aclFile, acls[0])
	atomicWrite(rulesFile, rules[0])
	if err := q.t.ReloadTableACL(); err != nil {
		t.Fatal(err)
	}
	if err := q.as("alice", "select * from r where id > 0"); err != nil {
		t.Fatalf("after the last reload: %v", err)
	}
	waitIdle(t, q)
}
