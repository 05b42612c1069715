package heartbeat

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func testWriterConfig() WriterConfig {
	c := DefaultWriterConfig()
	c.Keyspace, c.Shard, c.TabletUID = "commerce", "-80", 100
	c.DB = mysql.NewConfig()
	return c
}

func TestWriterConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*WriterConfig)
		ok     bool
	}{
		{"defaults", func(*WriterConfig) {}, true},
		{"on demand 4s", func(c *WriterConfig) { c.OnDemandDuration = 4 * time.Second }, true},
		{"interval 100ms", func(c *WriterConfig) { c.Interval = 100 * time.Millisecond }, true},
		{"no keyspace", func(c *WriterConfig) { c.Keyspace = "" }, false},
		{"no shard", func(c *WriterConfig) { c.Shard = "" }, false},
		{"no DB", func(c *WriterConfig) { c.DB = nil }, false},
		{"interval 0", func(c *WriterConfig) { c.Interval = 0 }, false},
		{"interval above vttablet's cap", func(c *WriterConfig) { c.Interval = 2 * time.Second }, false},
		{"on demand below vttablet's minimum", func(c *WriterConfig) { c.OnDemandDuration = time.Second }, false},
		{"negative on demand", func(c *WriterConfig) { c.OnDemandDuration = -time.Second }, false},
		{"bad sidecar name", func(c *WriterConfig) { c.SidecarDB = "a.b" }, false},
		{"empty sidecar name", func(c *WriterConfig) { c.SidecarDB = "" }, false},
	}
	for _, c := range cases {
		cfg := testWriterConfig()
		c.modify(&cfg)
		err := cfg.Validate()
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT))) {
			t.Errorf("%s: Validate = %v, want ok=%v (errors INVALID_ARGUMENT)", c.name, err, c.ok)
		}
		if _, err := NewWriter(cfg, Deps{}); (err == nil) != c.ok {
			t.Errorf("%s: NewWriter = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// newTestWriter returns a writer on a fake database with a fake clock, a log observer and a
// private registry.
func newTestWriter(t *testing.T, cfg WriterConfig, f *fakeDB) (*Writer, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	clock := newFakeClock()
	core, logs := observer.New(zapcore.InfoLevel)
	w, err := NewWriter(cfg, Deps{Log: zap.New(core), Registry: prometheus.NewRegistry(), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.openDB = f.open
	w.period = time.Hour // the tests tick by hand, or wake the loop
	t.Cleanup(w.Close)
	return w, clock, logs
}

func TestWriterWritesTheRow(t *testing.T) {
	f := &fakeDB{}
	w, clock, _ := newTestWriter(t, testWriterConfig(), f)
	if err := w.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Open writes the first heartbeat before returning.
	calls := f.recorded()
	if len(calls) < 1 {
		t.Fatal("Open wrote no heartbeat")
	}
	want := "INSERT INTO `_vt`.`heartbeat` (`ts`, `tabletUid`, `keyspaceShard`) VALUES (?, ?, ?) " +
		"ON DUPLICATE KEY UPDATE `ts` = VALUES(`ts`), `tabletUid` = VALUES(`tabletUid`)"
	c := calls[0]
	if c.query != want || len(c.args) != 3 || c.args[0] != clock.Now().UnixNano() || c.args[1] != uint32(100) || c.args[2] != "commerce:-80" {
		t.Fatalf("first write: %q %v", c.query, c.args)
	}
	st := w.Stats()
	if !st.Open || st.Writes < 1 || !st.LastWrite.Equal(clock.Now()) || st.Errors != 0 {
		t.Errorf("stats after Open: %+v", st)
	}
	if got := metricValue(w.writes); got != float64(st.Writes) {
		t.Errorf("writes metric %v, stats %d", got, st.Writes)
	}
}

func TestWriterErrorKinds(t *testing.T) {
	var next error
	f := &fakeDB{exec: func(context.Context, string, []driver.NamedValue) error { return next }}
	w, _, logs := newTestWriter(t, testWriterConfig(), f)
	db, _ := f.open(nil)
	defer db.Close()
	ctx := context.Background()
	readOnly := &mysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option"}
	other := &mysql.MySQLError{Number: 1146, Message: "Table '_vt.heartbeat' doesn't exist"}
	steps := []struct {
		err                     error
		writes, readOnly, other float64
		logs                    int
	}{
		{nil, 1, 0, 0, 0},
		{readOnly, 1, 1, 0, 1},
		{readOnly, 1, 2, 0, 1}, // a streak logs once
		{readOnly, 1, 3, 0, 1},
		{nil, 2, 3, 0, 2}, // recovery is logged
		{other, 2, 3, 1, 3},
		{other, 2, 3, 2, 3},
		{readOnly, 2, 4, 2, 4}, // a change of kind is logged
	}
	for i, s := range steps {
		next = s.err
		w.tick(ctx, db)
		got := []float64{metricValue(w.writes),
			metricValue(w.writeErrors.WithLabelValues(kindReadOnly)), metricValue(w.writeErrors.WithLabelValues(kindError))}
		if got[0] != s.writes || got[1] != s.readOnly || got[2] != s.other || logs.Len() != s.logs {
			t.Fatalf("step %d (%v): writes/read_only/error = %v, %d log lines; want %v/%v/%v, %d",
				i, s.err, got, logs.Len(), s.writes, s.readOnly, s.other, s.logs)
		}
	}
	st := w.Stats()
	if st.Writes != 2 || st.ReadOnlyRefusals != 4 || st.Errors != 2 || st.LastError == "" {
		t.Errorf("stats %+v", st)
	}
}

func TestWriterOnDemand(t *testing.T) {
	f := &fakeDB{}
	cfg := testWriterConfig()
	cfg.OnDemandDuration = 5 * time.Second
	w, clock, _ := newTestWriter(t, cfg, f)
	db, _ := f.open(nil)
	defer db.Close()
	ctx := context.Background()
	writes := func() int { return len(f.recorded()) }

	w.tick(ctx, db)
	if writes() != 0 {
		t.Fatal("on-demand writer wrote before any request")
	}
	w.RequestHeartbeats()
	select {
	case <-w.wake: // a request after idle wakes the loop at once
	default:
		t.Fatal("RequestHeartbeats after idle did not wake the loop")
	}
	w.tick(ctx, db)
	clock.Advance(4 * time.Second)
	w.RequestHeartbeats() // still active: extends, no wake-up needed
	select {
	case <-w.wake:
		t.Fatal("RequestHeartbeats while active woke the loop")
	default:
	}
	clock.Advance(4 * time.Second) // 8s after the first request, 4s after the second
	w.tick(ctx, db)
	if writes() != 2 {
		t.Fatalf("writes within the demand window = %d, want 2", writes())
	}
	clock.Advance(time.Second) // exactly 5s after the last request: expired
	w.tick(ctx, db)
	if writes() != 2 {
		t.Fatalf("wrote after the demand window: %d writes", writes())
	}

	// Always-on mode ignores requests and always writes.
	f2 := &fakeDB{}
	w2, _, _ := newTestWriter(t, testWriterConfig(), f2)
	db2, _ := f2.open(nil)
	defer db2.Close()
	w2.RequestHeartbeats()
	if len(w2.wake) != 0 {
		t.Error("RequestHeartbeats woke an always-on writer")
	}
	w2.tick(ctx, db2)
	if len(f2.recorded()) != 1 {
		t.Error("always-on writer did not write")
	}
}

func TestWriterOnDemandOpenStartsWindow(t *testing.T) {
	f := &fakeDB{}
	cfg := testWriterConfig()
	cfg.OnDemandDuration = 5 * time.Second
	w, _, _ := newTestWriter(t, cfg, f)
	if err := w.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.recorded()) < 1 {
		t.Error("Open in on-demand mode wrote no first heartbeat")
	}
}

func TestWriterLifecycle(t *testing.T) {
	block := make(chan struct{})
	started := make(chan struct{}, 1)
	var blocking atomic.Bool
	f := &fakeDB{exec: func(ctx context.Context, _ string, _ []driver.NamedValue) error {
		if !blocking.Load() {
			return nil
		}
		started <- struct{}{}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-block:
			return nil
		}
	}}
	w, _, _ := newTestWriter(t, testWriterConfig(), f)
	w.timeout = time.Hour // only Close ends the blocked write
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		blocking.Store(false)
		if err := w.Open(ctx); err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		if err := w.Open(ctx); err != nil {
			t.Fatalf("round %d: second Open: %v", round, err)
		}
		// Make the loop's next write block, wake the loop, and close while it is in flight.
		blocking.Store(true)
		w.wake <- struct{}{}
		<-started
		w.Close()
		w.Close()
		if st := w.Stats(); st.Open || st.Errors != 0 {
			t.Fatalf("round %d: after Close: %+v (a write cancelled by Close is not a failure)", round, st)
		}
	}
	close(block)
}

func TestWriterOpenFailureLeavesNothingRunning(t *testing.T) {
	cfg := testWriterConfig()
	cfg.DB.TLSConfig = "no-such-tls-config"
	w, err := NewWriter(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Open(context.Background()); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
		t.Fatalf("Open with unusable settings = %v, want INVALID_ARGUMENT", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2, _, _ := newTestWriter(t, testWriterConfig(), &fakeDB{})
	if err := w2.Open(ctx); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_CANCELED)) {
		t.Fatalf("Open with an ended context = %v, want CANCELED", err)
	}
	if w.Stats().Open || w2.Stats().Open {
		t.Error("a failed Open left the writer open")
	}
	goleak.VerifyNone(t)
	w.Close() // harmless on a writer that never opened
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	deps := Deps{Registry: reg, Labels: prometheus.Labels{"tablet": "zone1-100"}}
	a := testWriterConfig()
	b := testWriterConfig()
	b.Shard = "80-"
	if _, err := NewWriter(a, deps); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if _, err := NewWriter(b, deps); err != nil {
		t.Fatalf("writer of another shard on the same registry: %v", err)
	}
	before, _ := reg.Gather()
	if _, err := NewWriter(a, deps); err == nil {
		t.Fatal("a second writer for the same shard and registry registered its metrics")
	}
	rc := testReaderConfig()
	if _, err := NewReader(rc, deps); err != nil {
		t.Fatalf("reader beside the writers: %v", err)
	}
	if _, err := NewReader(rc, deps); err == nil {
		t.Fatal("a second reader for the same shard and registry registered its metrics")
	}
	after, _ := reg.Gather()
	if len(after) != len(before)+4 { // the first reader's four families
		t.Errorf("metric families %d -> %d: a failed constructor left metrics behind", len(before), len(after))
	}
	for _, mf := range after {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["keyspace"] != "commerce" || labels["tablet"] != "zone1-100" || labels["shard"] == "" {
				t.Errorf("%s has labels %v", mf.GetName(), labels)
			}
		}
	}
}
