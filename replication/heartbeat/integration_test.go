package heartbeat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tabletd/tabletd/sidecar"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// testInterval keeps the test short; Validate allows any interval up to 1s.
const testInterval = 100 * time.Millisecond

// waitFor polls cond every interval until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		case <-tick.C:
		}
	}
}

func appConfig(t *testing.T, srv *mariadbtest.Server) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(srv.DSN(mariadbtest.UserApp, mariadbtest.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startPair starts a primary with the sidecar schema and a replica that received it.
func startPair(ctx context.Context, t *testing.T) (primary, replica *mariadbtest.Server) {
	t.Helper()
	primary, replica = mariadbtest.Start(t, mariadbtest.Options{}), mariadbtest.Start(t, mariadbtest.Options{})
	var pos string
	if err := primary.RootDB(t).QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	replica.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "RESET MASTER",
		fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", pos),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', "+
			"MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos", primary.Port, mariadbtest.UserRepl, mariadbtest.Password),
		"START SLAVE")
	conn, err := primary.RootDB(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := sidecar.Ensure(ctx, conn, sidecar.DefaultName, sidecar.Replicated); err != nil {
		t.Fatalf("sidecar.Ensure: %v", err)
	}
	return primary, replica
}

// pairEnv is a writer on a real primary (as the application user) and a reader on its replica.
type pairEnv struct {
	primary, replica *mariadbtest.Server
	reader           *Reader
	writer           *Writer
	logs             *observer.ObservedLogs // the writer's
}

func newPairEnv(ctx context.Context, t *testing.T) *pairEnv {
	t.Helper()
	e := &pairEnv{}
	e.primary, e.replica = startPair(ctx, t)
	rc := DefaultReaderConfig()
	rc.Keyspace, rc.Shard, rc.Interval, rc.DB = "commerce", "0", testInterval, appConfig(t, e.replica)
	var err error
	if e.reader, err = NewReader(rc, Deps{Registry: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.reader.Close)
	wc := DefaultWriterConfig()
	wc.Keyspace, wc.Shard, wc.TabletUID, wc.Interval, wc.DB = "commerce", "0", 100, testInterval, appConfig(t, e.primary)
	core, logs := observer.New(zapcore.InfoLevel)
	e.logs = logs
	if e.writer, err = NewWriter(wc, Deps{Registry: prometheus.NewRegistry(), Log: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.writer.Close)
	return e
}

func (e *pairEnv) lagState() string {
	lag, known, reason := e.reader.Lag()
	return fmt.Sprintf("lag %v known %v reason %q", lag, known, reason)
}

func TestHeartbeatOnReplicationPair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPairEnv(ctx, t)
	t.Run("no row yet: lag unknown", func(t *testing.T) { e.checkNoRow(ctx, t) })
	t.Run("writer on primary, small known lag on replica", func(t *testing.T) { e.checkKnownLag(ctx, t) })
	t.Run("replication stopped: lag grows, never 0", func(t *testing.T) { e.checkStoppedReplication(ctx, t) })
	t.Run("writer refused on a read_only primary", func(t *testing.T) { e.checkReadOnly(ctx, t) })
	t.Run("replica down: lag unknown", func(t *testing.T) { e.checkReplicaDown(ctx, t) })
	e.writer.Close()
	e.reader.Close()
	if e.writer.Stats().Open {
		t.Error("writer open after Close")
	}
}

func (e *pairEnv) checkNoRow(ctx context.Context, t *testing.T) {
	if err := e.reader.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if lag, known, reason := e.reader.Lag(); known || lag != 0 || reason == "" {
		t.Errorf("before any heartbeat: %s", e.lagState())
	}
	if n := metricValue(e.reader.readErrors.WithLabelValues(kindNoRow)); n < 1 {
		t.Errorf("no_row reads = %v", n)
	}
}

func (e *pairEnv) checkKnownLag(ctx context.Context, t *testing.T) {
	if err := e.writer.Open(ctx); err != nil {
		t.Fatal(err)
	}
	var uid uint32
	if err := e.primary.RootDB(t).QueryRowContext(ctx,
		"SELECT tabletUid FROM _vt.heartbeat WHERE keyspaceShard = 'commerce:0'").Scan(&uid); err != nil || uid != 100 {
		t.Fatalf("heartbeat row on the primary after Open: uid %d, %v", uid, err)
	}
	waitFor(ctx, t, "a known lag", func() (bool, string) {
		_, known, reason := e.reader.Lag()
		return known && reason == "", e.lagState()
	})
	// Not a timing assertion: a lag computed in the wrong unit (or from the wrong clock) is
	// off by orders of magnitude; a caught-up replica is within seconds.
	if lag, _, _ := e.reader.Lag(); lag < 0 || lag > time.Minute {
		t.Errorf("caught-up replica: %s", e.lagState())
	}
	if metricValue(e.reader.knownGauge) != 1 || metricValue(e.writer.writes) < 1 {
		t.Errorf("metrics: known %v, writes %v", metricValue(e.reader.knownGauge), metricValue(e.writer.writes))
	}
}

func (e *pairEnv) checkStoppedReplication(ctx context.Context, t *testing.T) {
	e.replica.Exec(t, "STOP SLAVE SQL_THREAD")
	waitFor(ctx, t, "the lag to grow past 5 intervals", func() (bool, string) {
		lag, known, reason := e.reader.Lag()
		if known && lag == 0 {
			t.Fatalf("lag reported as a known 0 while the replica is stopped: %s", e.lagState())
		}
		return known && lag > 5*testInterval && reason != "", e.lagState()
	})
	e.replica.Exec(t, "START SLAVE SQL_THREAD")
	waitFor(ctx, t, "the lag to come back", func() (bool, string) {
		_, known, reason := e.reader.Lag()
		return known && reason == "", e.lagState()
	})
}

func (e *pairEnv) checkReadOnly(ctx context.Context, t *testing.T) {
	before := e.writer.Stats()
	e.primary.Exec(t, "SET GLOBAL read_only = 1")
	waitFor(ctx, t, "read_only refusals", func() (bool, string) {
		st := e.writer.Stats()
		return st.ReadOnlyRefusals >= before.ReadOnlyRefusals+3, fmt.Sprintf("%+v", st)
	})
	refusedLogs := e.logs.FilterMessageSnippet("read_only").Len()
	e.primary.Exec(t, "SET GLOBAL read_only = 0")
	waitFor(ctx, t, "writes to resume", func() (bool, string) {
		st := e.writer.Stats()
		return st.Writes > before.Writes && st.LastError == "", fmt.Sprintf("%+v", st)
	})
	if st := e.writer.Stats(); st.Errors != before.Errors {
		t.Errorf("read_only refusals counted as errors: %+v", st)
	}
	if refusedLogs != 1 {
		t.Errorf("%d log lines for a streak of read_only refusals, want 1", refusedLogs)
	}
	if n := metricValue(e.writer.writeErrors.WithLabelValues(kindReadOnly)); n < 3 {
		t.Errorf("read_only metric %v", n)
	}
}

func (e *pairEnv) checkReplicaDown(ctx context.Context, t *testing.T) {
	e.replica.Kill(t)
	waitFor(ctx, t, "an unknown lag", func() (bool, string) {
		lag, known, reason := e.reader.Lag()
		return !known && lag == 0 && reason != "", e.lagState()
	})
	if n := metricValue(e.reader.readErrors.WithLabelValues(kindError)); n < 1 {
		t.Errorf("error reads = %v", n)
	}
}

// TestWriterRefusedByReadOnlyFromStart opens a writer on a server that is read_only from the
// start, as on a demoted primary: every write is refused and nothing reaches the table.
func TestWriterRefusedByReadOnlyFromStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := mariadbtest.Start(t, mariadbtest.Options{})
	root := srv.RootDB(t)
	conn, err := root.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.Ensure(ctx, conn, "_vt_ro", sidecar.Replicated); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	srv.Exec(t, "SET GLOBAL read_only = 1")
	wc := DefaultWriterConfig()
	wc.Keyspace, wc.Shard, wc.SidecarDB, wc.Interval, wc.DB = "ks", "0", "_vt_ro", testInterval, appConfig(t, srv)
	w, err := NewWriter(wc, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Open(ctx); err != nil {
		t.Fatalf("Open on a read_only server: %v", err)
	}
	waitFor(ctx, t, "refusals", func() (bool, string) {
		st := w.Stats()
		return st.ReadOnlyRefusals >= 2, fmt.Sprintf("%+v", st)
	})
	w.Close()
	var n int
	if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM _vt_ro.heartbeat").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows written on a read_only server: %d, %v", n, err)
	}
	if st := w.Stats(); st.Writes != 0 || st.Errors != 0 {
		t.Errorf("stats %+v, want only read_only refusals", st)
	}
}
