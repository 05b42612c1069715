package heartbeat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/sidecar"
)

// staleFactor bounds, in intervals, two things: how long a successful read stays the current
// measurement (reads are every interval and may each take one, so 3 allows one slow or lost
// read), and how old the heartbeat itself may be before Lag explains that the primary may have
// stopped writing.
const staleFactor = 3

// Reader measures replication lag from the heartbeat row. Safe for concurrent use.
type Reader struct {
	cfg ReaderConfig
	log *zap.Logger
	now func() time.Time
	// sidecarDB is the sidecar database read from; SetSidecarDB changes it.
	sidecarDB atomic.Pointer[string]
	key       string
	// period is the loop's tick and timeout bounds one read: both one Interval, as in
	// vttablet. Tests lengthen them.
	period, timeout time.Duration
	openDB          func(*mysql.Config) (*sql.DB, error) // replaced by tests

	reads                prometheus.Counter
	readErrors           *prometheus.CounterVec
	lagGauge, knownGauge prometheus.GaugeFunc

	mu     sync.Mutex // guards db, cancel, done; held across Open and Close
	db     *sql.DB    // nil when closed
	cancel context.CancelFunc
	done   chan struct{}

	lagMu sync.Mutex // guards m
	m     measurement
}

// measurement is the outcome of the reads so far.
type measurement struct {
	open      bool
	lastOK    time.Time     // when the last read that found the row finished; zero: none
	lag       time.Duration // now - ts at lastOK (may be negative: clock skew)
	failure   string        // why the last read gave no lag; "" after a good read
	attempted bool          // a read finished since Open
}

// NewReader validates cfg and registers the reader's metrics. Nothing runs until Open.
func NewReader(cfg ReaderConfig, deps Deps) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps = deps.withDefaults()
	labels := constLabels(deps, cfg.Keyspace, cfg.Shard)
	r := &Reader{
		cfg:     cfg,
		log:     deps.Log.With(zap.String("component", "heartbeat-reader")),
		now:     deps.Clock,
		key:     keyspaceShard(cfg.Keyspace, cfg.Shard),
		period:  cfg.Interval,
		timeout: cfg.Interval,
		openDB:  openDB,
		reads: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_heartbeat_reads_total",
			Help: "Heartbeat reads that found the row.", ConstLabels: labels}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_heartbeat_read_errors_total",
			Help:        "Heartbeat reads that gave no lag, by kind: no_row (the primary has not written one) or error.",
			ConstLabels: labels}, []string{"kind"}),
	}
	r.readErrors.WithLabelValues(kindNoRow)
	r.readErrors.WithLabelValues(kindError)
	r.lagGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tabletd_heartbeat_lag_seconds",
		Help: "Replication lag measured by the heartbeat; NaN while unknown (never 0).", ConstLabels: labels},
		func() float64 {
			if l, known, _ := r.Lag(); known {
				return l.Seconds()
			}
			return math.NaN()
		})
	r.knownGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tabletd_heartbeat_lag_known",
		Help: "1 when the heartbeat lag is known, 0 when not.", ConstLabels: labels},
		func() float64 {
			if _, known, _ := r.Lag(); known {
				return 1
			}
			return 0
		})
	if err := register(deps.Registry, "reader", r.reads, r.readErrors, r.lagGauge, r.knownGauge); err != nil {
		return nil, err
	}
	r.sidecarDB.Store(&cfg.SidecarDB)
	return r, nil
}

// SetSidecarDB switches to the keyspace's sidecar database (Keyspace.sidecar_db_name, known
// once the tablet has read its keyspace record); a bad name is refused and the old one kept.
func (r *Reader) SetSidecarDB(name string) error {
	if err := sidecar.ValidateName(name); err != nil {
		return err
	}
	r.sidecarDB.Store(&name)
	return nil
}

// Open starts reading: one read at once (bounded by ctx and Interval), so Lag has a first
// answer when Open returns, then one every Interval. A failed read does not fail Open; Open
// fails only when the connection settings are unusable or ctx has ended, and then nothing
// runs. Open on an open Reader does nothing.
func (r *Reader) Open(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "heartbeat reader: open")
	}
	db, err := r.openDB(r.cfg.DB)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "heartbeat reader: connection settings")
	}
	r.lagMu.Lock()
	r.m = measurement{open: true}
	r.lagMu.Unlock()
	r.read(ctx, db)
	loopCtx, cancel := context.WithCancel(context.Background())
	r.db, r.cancel, r.done = db, cancel, make(chan struct{})
	go r.loop(loopCtx, db, r.done)
	r.log.Info("heartbeat reader open", zap.Duration("interval", r.cfg.Interval))
	return nil
}

// Close stops reading; Lag is unknown until the next Open. Close on a closed Reader does
// nothing.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		return
	}
	r.cancel()
	<-r.done
	if err := r.db.Close(); err != nil {
		r.log.Warn("heartbeat reader: closing the connection", zap.Error(err))
	}
	r.db, r.cancel, r.done = nil, nil, nil
	r.lagMu.Lock()
	r.m = measurement{}
	r.lagMu.Unlock()
	r.log.Info("heartbeat reader closed")
}

// Lag returns the replication lag, or known=false with the reason it is unknown: the reader
// is closed, no read has finished, the last read failed or found no row, or no read has
// succeeded in the last 3 intervals. A known lag is now - ts as of the last read; it is never
// negative (a primary clock ahead of ours is reported as 0 with a reason) and it keeps growing
// while the heartbeat does not advance, with a reason when it is older than 3 intervals.
func (r *Reader) Lag() (lag time.Duration, known bool, reason string) {
	r.lagMu.Lock()
	m := r.m
	r.lagMu.Unlock()
	return m.lagAt(r.now(), r.cfg.Interval, r.key)
}

func (m measurement) lagAt(now time.Time, interval time.Duration, key string) (time.Duration, bool, string) {
	stale := staleFactor * interval
	switch {
	case !m.open:
		return 0, false, "heartbeat reader is not open"
	case m.failure != "":
		return 0, false, m.failure
	case !m.attempted || m.lastOK.IsZero():
		return 0, false, "no heartbeat read yet"
	}
	if age := now.Sub(m.lastOK); age > stale {
		return 0, false, fmt.Sprintf("no heartbeat read has succeeded for %v", age.Round(time.Millisecond))
	}
	switch {
	case m.lag < 0:
		return 0, true, fmt.Sprintf("the primary's clock is %v ahead of this server's", (-m.lag).Round(time.Millisecond))
	case m.lag > stale:
		return m.lag, true, fmt.Sprintf("heartbeat for %s is %v old: this replica is behind, or the primary "+
			"stopped writing heartbeats (demoted, down, or on-demand heartbeats not requested)", key, m.lag.Round(time.Millisecond))
	}
	return m.lag, true, ""
}

func (r *Reader) loop(ctx context.Context, db *sql.DB, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.read(ctx, db)
	}
}

// read reads ts once, bounded by one Interval, and records the outcome.
func (r *Reader) read(ctx context.Context, db *sql.DB) {
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var ts int64
	dbName := *r.sidecarDB.Load()
	err := db.QueryRowContext(rctx, "SELECT `ts` FROM "+sidecar.QuoteName(dbName)+".`heartbeat` WHERE `keyspaceShard` = ?", r.key).Scan(&ts)
	if ctx.Err() != nil {
		return // closing
	}
	now := r.now()
	var kind, failure string
	switch {
	case errors.Is(err, sql.ErrNoRows):
		kind, failure = kindNoRow, fmt.Sprintf("no heartbeat row for %s in %s.heartbeat: the primary has not written one",
			r.key, sidecar.QuoteName(dbName))
	case err != nil:
		kind, failure = kindError, rpcerr.FromMySQL(err, "reading the heartbeat").Error()
	}
	r.lagMu.Lock()
	prevFailure := r.m.failure
	r.m.attempted = true
	r.m.failure = failure
	if kind == "" {
		r.m.lastOK = now
		r.m.lag = now.Sub(time.Unix(0, ts))
	}
	r.lagMu.Unlock()

	if kind == "" {
		r.reads.Inc()
	} else {
		r.readErrors.WithLabelValues(kind).Inc()
	}
	if failure != prevFailure {
		if failure == "" {
			r.log.Info("heartbeat read succeeds again")
		} else {
			r.log.Info("heartbeat lag unknown; not logging again until that changes", zap.String("reason", failure))
		}
	}
}
