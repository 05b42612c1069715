package heartbeat

import (
	"context"
	"database/sql/driver"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func testReaderConfig() ReaderConfig {
	c := DefaultReaderConfig()
	c.Keyspace, c.Shard = "commerce", "-80"
	c.DB = mysql.NewConfig()
	return c
}

func TestReaderConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*ReaderConfig)
		ok     bool
	}{
		{"defaults", func(*ReaderConfig) {}, true},
		{"custom sidecar", func(c *ReaderConfig) { c.SidecarDB = "_vt_commerce" }, true},
		{"no keyspace", func(c *ReaderConfig) { c.Keyspace = "" }, false},
		{"no DB", func(c *ReaderConfig) { c.DB = nil }, false},
		{"interval above the cap", func(c *ReaderConfig) { c.Interval = 1500 * time.Millisecond }, false},
		{"negative interval", func(c *ReaderConfig) { c.Interval = -time.Second }, false},
		{"system schema as sidecar", func(c *ReaderConfig) { c.SidecarDB = "mysql" }, false},
	}
	for _, c := range cases {
		cfg := testReaderConfig()
		c.modify(&cfg)
		err := cfg.Validate()
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT))) {
			t.Errorf("%s: Validate = %v, want ok=%v (errors INVALID_ARGUMENT)", c.name, err, c.ok)
		}
	}
}

func TestLagArithmetic(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	const interval = time.Second
	read := func(lag time.Duration) measurement {
		return measurement{open: true, attempted: true, lastOK: base, lag: lag}
	}
	cases := []struct {
		name       string
		m          measurement
		now        time.Time
		lag        time.Duration
		known      bool
		withReason bool
	}{
		{"closed", measurement{}, base, 0, false, true},
		{"open, nothing read", measurement{open: true}, base, 0, false, true},
		{"no row", measurement{open: true, attempted: true, failure: "no heartbeat row"}, base, 0, false, true},
		{"failed read after good ones", measurement{open: true, attempted: true, lastOK: base, lag: time.Second, failure: "boom"},
			base, 0, false, true},
		{"fresh", read(250 * time.Millisecond), base, 250 * time.Millisecond, true, false},
		{"fresh, asked a little later", read(250 * time.Millisecond), base.Add(2 * time.Second), 250 * time.Millisecond, true, false},
		{"no good read for over 3 intervals", read(250 * time.Millisecond), base.Add(3*time.Second + time.Millisecond), 0, false, true},
		{"heartbeat 3 intervals old: still no reason", read(3 * time.Second), base, 3 * time.Second, true, false},
		{"old heartbeat: known, with a reason", read(42 * time.Second), base, 42 * time.Second, true, true},
		{"primary clock ahead", read(-300 * time.Millisecond), base, 0, true, true},
	}
	for _, c := range cases {
		lag, known, reason := c.m.lagAt(c.now, interval, "commerce:-80")
		if lag != c.lag || known != c.known || (reason != "") != c.withReason {
			t.Errorf("%s: Lag = %v, %v, %q; want %v, %v, reason=%v", c.name, lag, known, reason, c.lag, c.known, c.withReason)
		}
		if !known && lag != 0 {
			t.Errorf("%s: unknown lag carries a value %v", c.name, lag)
		}
	}
}

func TestReaderReads(t *testing.T) {
	clock := newFakeClock()
	var answer func() ([][]driver.Value, error)
	f := &fakeDB{query: func(context.Context, string, []driver.NamedValue) ([][]driver.Value, error) { return answer() }}
	r, err := NewReader(testReaderConfig(), Deps{Registry: prometheus.NewRegistry(), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.openDB = f.open
	r.period = time.Hour // the test reads by hand
	defer r.Close()
	gauge := func() (lag, known float64) {
		return metricValue(r.lagGauge), metricValue(r.knownGauge)
	}

	answer = func() ([][]driver.Value, error) { return nil, nil } // no row yet
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, known, reason := r.Lag(); known || reason == "" {
		t.Errorf("no row: Lag known=%v reason %q", known, reason)
	}
	if l, k := gauge(); !math.IsNaN(l) || k != 0 {
		t.Errorf("no row: gauges lag=%v known=%v, want NaN, 0", l, k)
	}
	if got := metricValue(r.readErrors.WithLabelValues(kindNoRow)); got < 1 {
		t.Errorf("no_row errors = %v", got)
	}
	calls := f.recorded()
	if calls[0].query != "SELECT `ts` FROM `_vt`.`heartbeat` WHERE `keyspaceShard` = ?" || calls[0].args[0] != "commerce:-80" {
		t.Errorf("read: %q %v", calls[0].query, calls[0].args)
	}

	db, _ := f.open(nil)
	defer db.Close()
	ts := clock.Now().Add(-1500 * time.Millisecond).UnixNano()
	answer = func() ([][]driver.Value, error) { return [][]driver.Value{{ts}}, nil }
	r.read(context.Background(), db)
	if lag, known, reason := r.Lag(); !known || lag != 1500*time.Millisecond || reason != "" {
		t.Errorf("row 1.5s old: Lag = %v, %v, %q", lag, known, reason)
	}
	if l, k := gauge(); l != 1.5 || k != 1 {
		t.Errorf("gauges lag=%v known=%v, want 1.5, 1", l, k)
	}

	// The primary stops writing: the same row gets older at every read.
	clock.Advance(10 * time.Second)
	r.read(context.Background(), db)
	if lag, known, reason := r.Lag(); !known || lag != 11500*time.Millisecond || reason == "" {
		t.Errorf("row 11.5s old: Lag = %v, %v, %q", lag, known, reason)
	}

	// A failed read makes the lag unknown at once.
	answer = func() ([][]driver.Value, error) {
		return nil, &mysql.MySQLError{Number: 1146, Message: "Table '_vt.heartbeat' doesn't exist"}
	}
	r.read(context.Background(), db)
	if lag, known, reason := r.Lag(); known || lag != 0 || reason == "" {
		t.Errorf("failed read: Lag = %v, %v, %q", lag, known, reason)
	}
	if got := metricValue(r.readErrors.WithLabelValues(kindError)); got != 1 {
		t.Errorf("error reads = %v, want 1", got)
	}

	r.Close()
	if _, known, reason := r.Lag(); known || reason == "" {
		t.Errorf("closed: Lag known=%v reason %q", known, reason)
	}
	// Reopened, it measures again.
	answer = func() ([][]driver.Value, error) { return [][]driver.Value{{clock.Now().UnixNano()}}, nil }
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lag, known, _ := r.Lag(); !known || lag != 0 {
		t.Errorf("reopened: Lag = %v, %v", lag, known)
	}
	// Without reads the measurement goes stale.
	clock.Advance(3*time.Second + time.Millisecond)
	if _, known, reason := r.Lag(); known || reason == "" {
		t.Errorf("stale: Lag known=%v reason %q", known, reason)
	}
}

func TestReaderOpenFailureLeavesNothingRunning(t *testing.T) {
	cfg := testReaderConfig()
	cfg.DB.TLSConfig = "no-such-tls-config"
	r, err := NewReader(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(context.Background()); !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
		t.Fatalf("Open with unusable settings = %v, want INVALID_ARGUMENT", err)
	}
	if _, known, _ := r.Lag(); known {
		t.Error("lag known after a failed Open")
	}
	r.Close()
}
