package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// Engine runs the streams of this tablet's database. It is open only while the tablet is a
// PRIMARY; Exec and WaitForPos answer UNAVAILABLE otherwise.
type Engine struct {
	cfg     Config
	deps    Deps
	log     *zap.Logger
	now     func() time.Time
	metrics *metrics

	// mu guards the fields below and serializes Exec (as vttablet's engine does), so a
	// statement and the controllers it starts or stops are one step.
	mu          sync.Mutex
	open        bool
	ctx         context.Context // the open engine's lifetime; controllers derive from it
	cancel      context.CancelFunc
	controllers map[int32]*controller
	stats       map[int32]*streamStats // kept across controller restarts, dropped on delete
	parser      *parser.Parser
	dba         *dbConn // Exec's connection (VReplicationExec runs as the dba user)
	filtered    *dbConn // the RPCs' connection (vttablet runs them as the filtered user)
	usedSidecar string  // the database the Exec connections last selected with USE

	wg sync.WaitGroup // open's row loading, journal transitions, WaitForPos calls
	js journalState
}

// New returns a closed engine.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Topo == nil || d.Dial == nil {
		return nil, fmt.Errorf("vreplication: Topo and Dial are required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Sidecar == nil {
		d.Sidecar = func() string { return "_vt" }
	}
	cfg.Filtered.DBName, cfg.Dba.DBName = cfg.DBName, cfg.DBName
	e := &Engine{cfg: cfg, deps: d, log: d.Log.Named("vreplication"), now: d.Clock,
		controllers: map[int32]*controller{}, stats: map[int32]*streamStats{}, parser: parser.New()}
	var err error
	if e.metrics, err = newMetrics(d.Registry, cfg.Keyspace, cfg.Shard); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) sidecar() string   { return e.deps.Sidecar() }
func (e *Engine) sidecarID() string { return QuoteID(e.sidecar()) }

// Open starts the engine: the streams are read and their controllers started in the
// background (retrying while MySQL is unreachable), so Open never blocks.
func (e *Engine) Open() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open {
		return
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.open = true
	e.dba = newConn(e.cfg.Dba)
	e.filtered = newConn(e.cfg.Filtered)
	e.usedSidecar = ""
	e.js.mu.Lock()
	e.js.closing, e.js.pending = false, nil
	e.js.mu.Unlock()
	e.wg.Add(1)
	go e.startAll(e.ctx)
	e.log.Info("vreplication engine open")
}

// startAll starts a controller for every stream of the database, retrying until it could
// read them or the engine closes.
func (e *Engine) startAll(ctx context.Context) {
	defer e.wg.Done()
	c := newConn(e.cfg.Filtered)
	defer c.close()
	delay := e.cfg.RetryDelay / 5
	for {
		rows, err := e.readAllSettings(ctx, c)
		if err == nil {
			e.mu.Lock()
			if ctx.Err() == nil {
				for _, s := range rows {
					if e.controllers[s.ID] == nil {
						e.startLocked(s)
					}
				}
			}
			e.mu.Unlock()
			return
		}
		e.log.Warn("cannot read the streams; will retry", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, e.cfg.MaxRetryDelay)
	}
}

// Close stops every controller and waits for them.
func (e *Engine) Close() {
	e.mu.Lock()
	if !e.open {
		e.mu.Unlock()
		return
	}
	e.open = false
	e.cancel()
	cts := e.controllers
	e.controllers = map[int32]*controller{}
	e.mu.Unlock()
	e.js.mu.Lock()
	e.js.closing = true // no journal transition starts after this
	e.js.mu.Unlock()
	for _, ct := range cts {
		ct.stop()
	}
	e.wg.Wait()
	e.mu.Lock()
	e.dba.close()
	e.filtered.close()
	e.mu.Unlock()
	e.log.Info("vreplication engine closed")
}

// IsOpen reports whether the engine runs (the tablet is a PRIMARY).
func (e *Engine) IsOpen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.open
}

var errClosed = rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "vreplication engine is closed")

// startLocked starts (or, for a stopped or failed stream, only registers) the controller
// of a stream. e.mu is held.
func (e *Engine) startLocked(s *settings) {
	if s.DBName != e.cfg.DBName {
		return // another database's stream (vttablet ignores those too)
	}
	st := e.stats[s.ID]
	if st == nil {
		st = newStreamStats(s)
		e.stats[s.ID] = st
	}
	st.reset(s)
	if s.Source != nil {
		e.js.setSource(s.ID, streamSource{s.Workflow, s.Source.Keyspace, s.Source.Shard})
	}
	e.controllers[s.ID] = newController(e, s, st)
}

// stopLocked stops a controller, if any; e.mu is held (controllers never take it while
// stopping, see controller.stop).
func (e *Engine) stopLocked(id int32) {
	if ct := e.controllers[id]; ct != nil {
		ct.stop()
		delete(e.controllers, id)
	}
}

// Exec runs a VReplicationExec statement (asDBA: as vttablet's VReplicationExec does; else
// as the filtered user, as the workflow RPCs do) and starts, restarts or stops the
// controllers of the streams it concerns.
func (e *Engine) Exec(ctx context.Context, query string, asDBA bool) (*querypb.QueryResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open {
		return nil, errClosed
	}
	plan, err := planExec(e.parser, query, e.sidecar())
	if err != nil {
		return nil, err
	}
	c := e.filtered
	if asDBA {
		c = e.dba
	}
	if e.usedSidecar != e.sidecar() {
		e.dba.close()
		e.filtered.close()
		e.dba.setup = []string{"use " + e.sidecarID()}
		e.filtered.setup = e.dba.setup
		e.usedSidecar = e.sidecar()
	}
	switch plan.kind {
	case execInsert:
		return e.execInsert(ctx, c, plan)
	case execUpdate:
		return e.execUpdate(ctx, c, plan)
	case execDelete:
		return e.execDelete(ctx, c, plan)
	}
	return c.exec(ctx, plan.query)
}

func (e *Engine) execInsert(ctx context.Context, c *dbConn, plan *execPlan) (*querypb.QueryResult, error) {
	qr, err := c.exec(ctx, plan.query)
	if err != nil {
		return nil, err
	}
	if qr.InsertId == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "insert failed to generate an id")
	}
	step := int64(1)
	if r, err := c.exec(ctx, "select @@session.auto_increment_increment"); err == nil && len(r.Rows) == 1 {
		v, _ := rowValues(r.Rows[0], 1)
		if n, err := strconv.ParseInt(string(v[0]), 10, 64); err == nil && n > 0 {
			step = n
		}
	}
	for k := 0; k < plan.numInserts; k++ {
		id := int32(int64(qr.InsertId) + int64(k)*step)
		e.stopLocked(id)
		s, err := e.readSettings(ctx, c, id)
		if err != nil {
			return nil, err
		}
		e.insertLog(ctx, c, id, logStreamCreate, s.State, "")
		e.startLocked(s)
	}
	return qr, nil
}

// selectIDs returns the ids of the streams a statement's WHERE selects.
func (e *Engine) selectIDs(ctx context.Context, c *dbConn, where string) ([]int32, error) {
	qr, err := c.exec(ctx, fmt.Sprintf("select id from %s.vreplication where %s", e.sidecarID(), where))
	if err != nil {
		return nil, err
	}
	ids := make([]int32, 0, len(qr.Rows))
	for _, r := range qr.Rows {
		v, _ := rowValues(r, 1)
		n, err := strconv.ParseInt(string(v[0]), 10, 32)
		if err != nil {
			return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "vreplication id %q", v[0])
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

func (e *Engine) execUpdate(ctx context.Context, c *dbConn, plan *execPlan) (*querypb.QueryResult, error) {
	ids, err := e.selectIDs(ctx, c, plan.where)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return &querypb.QueryResult{}, nil
	}
	for _, id := range ids {
		e.stopLocked(id)
	}
	qr, err := c.exec(ctx, plan.query)
	// Whatever the outcome, the streams run again as their rows now say.
	for _, id := range ids {
		s, rerr := e.readSettings(ctx, c, id)
		if rerr != nil {
			continue // deleted meanwhile
		}
		if err == nil {
			e.insertLog(ctx, c, id, logStateChange, s.State, "")
		}
		e.startLocked(s)
	}
	return qr, err
}

func (e *Engine) execDelete(ctx context.Context, c *dbConn, plan *execPlan) (*querypb.QueryResult, error) {
	ids, err := e.selectIDs(ctx, c, plan.where)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return &querypb.QueryResult{}, nil
	}
	for _, id := range ids {
		e.stopLocked(id)
		e.insertLog(ctx, c, id, logStreamDelete, "", "")
	}
	list := idList(ids)
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	qr, err := c.exec(ctx, plan.query)
	if err == nil {
		err = c.execAll(ctx,
			fmt.Sprintf("delete from %s.copy_state where vrepl_id in (%s)", e.sidecarID(), list),
			fmt.Sprintf("delete from %s.post_copy_action where vrepl_id in (%s)", e.sidecarID(), list))
	}
	if err == nil {
		err = c.commit(ctx)
	}
	if err != nil {
		c.rollback()
		// The rows are still there: run their streams again.
		for _, id := range ids {
			if s, rerr := e.readSettings(ctx, c, id); rerr == nil {
				e.startLocked(s)
			}
		}
		return nil, err
	}
	for _, id := range ids {
		delete(e.stats, id)
		e.js.dropSource(id)
		e.metrics.forget(id)
	}
	return qr, nil
}

func idList(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = itoa(id)
	}
	return strings.Join(parts, ",")
}

// WaitForPos waits until stream id has applied pos. It fails if the stream stops first,
// if pos is of another flavor than the stream's, or when ctx ends.
func (e *Engine) WaitForPos(ctx context.Context, id int32, pos string) error {
	want, err := replication.ParsePosition(pos)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "invalid position %q", pos)
	}
	e.mu.Lock()
	if !e.open {
		e.mu.Unlock()
		return errClosed
	}
	e.wg.Add(1)
	engCtx := e.ctx
	e.mu.Unlock()
	defer e.wg.Done()
	ctx, cancel := mergeCancel(ctx, engCtx)
	defer cancel()
	c := newConn(e.cfg.Filtered)
	defer c.close()
	start := e.now()
	tick := time.NewTicker(e.cfg.WaitPoll)
	defer tick.Stop()
	var last string
	for {
		qr, err := c.exec(ctx, fmt.Sprintf("select pos, state, message from %s.vreplication where id = %d", e.sidecarID(), id))
		switch {
		case err != nil && errno(err) == 1213: // deadlock: read again
		case err != nil:
			if ctx.Err() != nil {
				return waitTimeout(ctx, pos, last, start, e.now())
			}
			return err
		case len(qr.Rows) == 0:
			return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "vreplication stream %d not found", id)
		default:
			v, _ := rowValues(qr.Rows[0], 3)
			last = string(v[0])
			cur, perr := replication.ParsePosition(last)
			if perr != nil {
				return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, perr, "stream %d has an unreadable position %q", id, last)
			}
			if !cur.IsZero() && cur.Flavor() != want.Flavor() {
				return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "position %q is a %s position but stream %d is at %q", pos, want.Flavor(), id, last)
			}
			if cur.AtLeast(want) {
				return nil
			}
			if string(v[1]) == stateStopped {
				return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "replication has stopped at %v before reaching position %v, message: %s", last, pos, v[2])
			}
		}
		select {
		case <-ctx.Done():
			return waitTimeout(ctx, pos, last, start, e.now())
		case <-tick.C:
		}
	}
}

func waitTimeout(ctx context.Context, pos, last string, start, now time.Time) error {
	return rpcerr.Wrap(rpcerr.Code(ctx.Err()), ctx.Err(), "error waiting for pos: %s, last pos: %s, wait time: %v: "+
		"possibly no tablets are available to stream in the source keyspace for your cell and tablet_types setting",
		pos, last, now.Sub(start).Round(time.Millisecond))
}

// mergeCancel is ctx, also cancelled when other ends.
func mergeCancel(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}

// Streams returns every stream's status, by id.
func (e *Engine) Streams() []StreamStatus {
	e.mu.Lock()
	out := make([]StreamStatus, 0, len(e.stats))
	for id, st := range e.stats {
		if e.controllers[id] == nil {
			continue
		}
		out = append(out, st.snapshot(e.now()))
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
