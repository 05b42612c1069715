package heartbeat

import (
	"context"
	"database/sql"
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

// errReadOnly is ER_OPTION_PREVENTS_STATEMENT: a write on a read_only server by a user
// without SUPER / READ ONLY ADMIN.
const errReadOnly = 1290

// Writer writes the primary's heartbeat. Safe for concurrent use.
type Writer struct {
	cfg WriterConfig
	log *zap.Logger
	now func() time.Time
	// sidecarDB is the sidecar database written to; SetSidecarDB changes it.
	sidecarDB atomic.Pointer[string]
	// period is the loop's tick; timeout bounds one write. Both are one Interval, as in
	// vttablet, so a write blocked on a lock or a semi-sync wait does not hold up the next one
	// for long. Tests lengthen them.
	period, timeout time.Duration
	openDB          func(*mysql.Config) (*sql.DB, error) // replaced by tests

	writes      prometheus.Counter
	writeErrors *prometheus.CounterVec

	// demandUntil is the UnixNano until which on-demand writes run; wake (capacity 1) makes
	// the loop write at once when a request restarts idle writes.
	demandUntil atomic.Int64
	wake        chan struct{}

	mu     sync.Mutex // guards the fields below; held across Open and Close
	db     *sql.DB    // nil when closed
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned

	statsMu sync.Mutex
	stats   WriterStats
	logged  string // the error kind last logged: log once per change, not per tick
}

// WriterStats is a snapshot for status pages.
type WriterStats struct {
	Open             bool
	Writes           int64     // successful writes
	ReadOnlyRefusals int64     // writes refused because the server is read_only (errno 1290)
	Errors           int64     // other failed writes
	LastWrite        time.Time // zero: none yet
	LastError        string    // the last failure, "" after a success
}

// NewWriter validates cfg and registers the writer's metrics. Nothing runs until Open.
func NewWriter(cfg WriterConfig, deps Deps) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	deps = deps.withDefaults()
	labels := constLabels(deps, cfg.Keyspace, cfg.Shard)
	w := &Writer{
		cfg:     cfg,
		log:     deps.Log.With(zap.String("component", "heartbeat-writer")),
		now:     deps.Clock,
		period:  cfg.Interval,
		timeout: cfg.Interval,
		openDB:  openDB,
		writes: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_heartbeat_writes_total",
			Help: "Heartbeats written.", ConstLabels: labels}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_heartbeat_write_errors_total",
			Help:        "Heartbeat writes that failed, by kind: read_only (the server refused it, errno 1290) or error.",
			ConstLabels: labels}, []string{"kind"}),
		wake: make(chan struct{}, 1),
	}
	// Both kinds are exported from the start, so a rate() sees the first error.
	w.writeErrors.WithLabelValues(kindReadOnly)
	w.writeErrors.WithLabelValues(kindError)
	if err := register(deps.Registry, "writer", w.writes, w.writeErrors); err != nil {
		return nil, err
	}
	w.sidecarDB.Store(&cfg.SidecarDB)
	return w, nil
}

// SetSidecarDB switches to the keyspace's sidecar database (Keyspace.sidecar_db_name, known
// once the tablet has read its keyspace record); a bad name is refused and the old one kept.
func (w *Writer) SetSidecarDB(name string) error {
	if err := sidecar.ValidateName(name); err != nil {
		return err
	}
	w.sidecarDB.Store(&name)
	return nil
}

// openDB opens a one-connection handle; the driver dials lazily.
func openDB(cfg *mysql.Config) (*sql.DB, error) {
	c := cfg.Clone()
	c.InterpolateParams = true // one round trip per write, no prepared statements
	connector, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, nil
}

// Open starts writing: one heartbeat at once (bounded by ctx and Interval), then every
// Interval, or in on-demand mode for OnDemandDuration from now. A failed write does not fail
// Open (it is counted and retried at the next tick); Open fails only when the connection
// settings are unusable or ctx has ended, and then nothing runs. Open on an open Writer does
// nothing.
func (w *Writer) Open(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.db != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return rpcerr.Wrap(rpcerr.Code(err), err, "heartbeat writer: open")
	}
	db, err := w.openDB(w.cfg.DB)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "heartbeat writer: connection settings")
	}
	if w.cfg.OnDemandDuration > 0 {
		w.demandUntil.Store(w.now().Add(w.cfg.OnDemandDuration).UnixNano())
	}
	w.setOpen(true)
	w.tick(ctx, db)
	loopCtx, cancel := context.WithCancel(context.Background())
	w.db, w.cancel, w.done = db, cancel, make(chan struct{})
	go w.loop(loopCtx, db, w.done)
	w.log.Info("heartbeat writer open", zap.Duration("interval", w.cfg.Interval),
		zap.Duration("on_demand_duration", w.cfg.OnDemandDuration))
	return nil
}

// Close stops the loop (cancelling a write in flight) and closes the connection. Close on a
// closed Writer does nothing.
func (w *Writer) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.db == nil {
		return
	}
	w.cancel()
	<-w.done
	if err := w.db.Close(); err != nil {
		w.log.Warn("heartbeat writer: closing the connection", zap.Error(err))
	}
	w.db, w.cancel, w.done = nil, nil, nil
	w.setOpen(false)
	w.log.Info("heartbeat writer closed")
}

// RequestHeartbeats keeps on-demand writes going for OnDemandDuration from now, writing one at
// once if they had stopped. Cheap and non-blocking: the throttler and lag checks call it
// often. Without on-demand mode the writer always writes and this does nothing.
func (w *Writer) RequestHeartbeats() {
	if w.cfg.OnDemandDuration <= 0 {
		return
	}
	now := w.now()
	prev := w.demandUntil.Swap(now.Add(w.cfg.OnDemandDuration).UnixNano())
	if prev <= now.UnixNano() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Stats returns a snapshot of the writer's counters.
func (w *Writer) Stats() WriterStats {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	return w.stats
}

func (w *Writer) loop(ctx context.Context, db *sql.DB, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(w.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		w.tick(ctx, db)
	}
}

// tick writes one heartbeat unless on-demand writes have expired.
func (w *Writer) tick(ctx context.Context, db *sql.DB) {
	if w.cfg.OnDemandDuration > 0 && w.now().UnixNano() >= w.demandUntil.Load() {
		return
	}
	err := w.write(ctx, db)
	if ctx.Err() != nil {
		return // closing: the cancelled write is not a failure
	}
	w.record(err)
}

// write upserts the row with ts = now, within w.timeout.
func (w *Writer) write(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	upsert := "INSERT INTO " + sidecar.QuoteName(*w.sidecarDB.Load()) + ".`heartbeat` (`ts`, `tabletUid`, `keyspaceShard`) " +
		"VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `ts` = VALUES(`ts`), `tabletUid` = VALUES(`tabletUid`)"
	_, err := db.ExecContext(ctx, upsert, w.now().UnixNano(), w.cfg.TabletUID, keyspaceShard(w.cfg.Keyspace, w.cfg.Shard))
	return err
}

// record counts a write's outcome and logs only changes of outcome, so a read_only server or
// a long outage does not write a line per tick.
func (w *Writer) record(err error) {
	kind := ""
	if err != nil {
		kind = kindError
		if num, _, ok := rpcerr.Errno(err); ok && num == errReadOnly {
			kind = kindReadOnly
		}
	}
	w.statsMu.Lock()
	switch kind {
	case "":
		w.stats.Writes++
		w.stats.LastWrite = w.now()
		w.stats.LastError = ""
	case kindReadOnly:
		w.stats.ReadOnlyRefusals++
		w.stats.LastError = err.Error()
	default:
		w.stats.Errors++
		w.stats.LastError = err.Error()
	}
	changed := kind != w.logged
	w.logged = kind
	w.statsMu.Unlock()

	if kind == "" {
		w.writes.Inc()
	} else {
		w.writeErrors.WithLabelValues(kind).Inc()
	}
	if !changed {
		return
	}
	switch kind {
	case "":
		w.log.Info("heartbeat writes succeed again")
	case kindReadOnly:
		w.log.Info("heartbeat writes refused: the server is read_only; counting, not logging, until that changes")
	default:
		w.log.Warn("heartbeat write failed; further failures are counted, not logged, until a write succeeds",
			zap.Error(rpcerr.FromMySQL(err, "heartbeat write")))
	}
}

func (w *Writer) setOpen(open bool) {
	w.statsMu.Lock()
	w.stats.Open = open
	if open {
		w.logged = "" // a new term logs its first failure again
	}
	w.statsMu.Unlock()
}
