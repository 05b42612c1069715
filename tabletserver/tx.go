package tabletserver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// stateful is a connection bound to a client across calls: an open transaction, a reserved
// connection (session settings, temporary tables, locks), or both. Transactions and reserved
// connections share one ID counter; when both are set their IDs are equal.
type stateful struct {
	id       int64
	pc       *pooled
	inTx     bool
	reserved bool
	expires  time.Time // the killer ends it after this; zero: never (DBA workload)
	timeout  time.Duration
	inUse    bool   // guarded by txEngine.mu
	purpose  string // what holds it while inUse
	txl      txLog  // the transaction log's record of its transaction (txlog.go)
}

func (s *stateful) conn() *mysqlconn.Conn { return s.pc.Conn() }

// ended remembers why an ID stopped existing, for vttablet's error texts.
type ended struct {
	at     time.Time
	reason string
}

// txEngine owns the stateful connections: begin, commit, rollback, reserve, release, and the
// killer that ends the ones that outlive their timeout.
type txEngine struct {
	cfg      QueryConfig
	e        *executor
	log      *zap.Logger
	now      func() time.Time
	txPool   *dbPool
	foundRow *dbPool
	nextID   atomic.Int64

	mu        sync.Mutex
	active    map[int64]*stateful
	endedIDs  map[int64]ended
	endedFIFO []int64 // bounds endedIDs to the most recent maxEnded
	closed    bool

	stopKiller context.CancelFunc
	killerDone chan struct{}
}

const maxEnded = 1000

func newTxEngine(cfg QueryConfig, txPool, foundRows *dbPool, e *executor, d Deps) *txEngine {
	t := &txEngine{cfg: cfg, e: e, log: d.Log, now: d.Clock, txPool: txPool, foundRow: foundRows,
		active: map[int64]*stateful{}, endedIDs: map[int64]ended{}, closed: true}
	// Seeded with the start time like vttablet, so IDs from before a restart are not reused.
	t.nextID.Store(d.Clock().UnixNano())
	return t
}

// open makes the engine accept new transactions and starts the killer. It is a no-op on an
// open engine; after shutdown it can be opened again.
func (t *txEngine) open() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		return
	}
	t.closed = false
	ctx, cancel := context.WithCancel(context.Background())
	t.stopKiller, t.killerDone = cancel, make(chan struct{})
	go t.killer(ctx)
}

func (t *txEngine) poolFor(o *querypb.ExecuteOptions) *dbPool {
	if o.GetClientFoundRows() {
		return t.foundRow
	}
	return t.txPool
}

// timeoutFor is the lifetime of a transaction or reserved connection: by workload, and
// capped by the session's transaction_timeout.
func (t *txEngine) timeoutFor(o *querypb.ExecuteOptions) time.Duration {
	d := t.cfg.TxTimeout
	switch o.GetWorkload() {
	case querypb.ExecuteOptions_OLAP:
		d = t.cfg.OLAPTxTimeout
	case querypb.ExecuteOptions_DBA:
		d = 0
	}
	if o != nil && o.TransactionTimeout != nil {
		if s := time.Duration(*o.TransactionTimeout) * time.Millisecond; s > 0 && (d == 0 || s < d) {
			d = s
		}
	}
	return d
}

// create takes a connection and registers it under a new ID, locked for the caller.
func (t *txEngine) create(ctx context.Context, o *querypb.ExecuteOptions, purpose string) (*stateful, error) {
	p := t.poolFor(o)
	pc, err := p.Get(ctx, nil)
	if err != nil {
		if rpcerr.Code(poolError(err, p)) == vtrpcpb.Code_RESOURCE_EXHAUSTED {
			return nil, rpcerr.Wrap(vtrpcpb.Code_RESOURCE_EXHAUSTED, err, "transaction pool connection limit exceeded")
		}
		return nil, poolError(err, p)
	}
	s := &stateful{id: t.nextID.Add(1), pc: pc, timeout: t.timeoutFor(o), inUse: true, purpose: purpose}
	s.renew(t.now())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		pc.Recycle()
		return nil, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tx engine can't accept new connections in state NotServing")
	}
	t.active[s.id] = s
	return s, nil
}

func (s *stateful) renew(now time.Time) {
	if s.timeout > 0 {
		s.expires = now.Add(s.timeout)
	}
}

// get locks the connection of id for purpose, or explains in vttablet's words why it cannot.
func (t *txEngine) get(id int64, purpose string) (*stateful, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.active[id]
	if !ok {
		if end, ok := t.endedIDs[id]; ok {
			return nil, rpcerr.New(vtrpcpb.Code_ABORTED, "transaction %d: ended at %s (%s)",
				id, end.at.Format("2006-01-02 15:04:05.000 MST"), end.reason)
		}
		return nil, rpcerr.New(vtrpcpb.Code_ABORTED, "transaction %d: not found (potential transaction timeout)", id)
	}
	if s.inUse {
		return nil, rpcerr.New(vtrpcpb.Code_ABORTED, "transaction %d: in use: %s", id, s.purpose)
	}
	s.inUse, s.purpose = true, purpose
	return s, nil
}

// put unlocks s after use.
// A connection that running the statement ended (killed, lost) is no longer registered;
// put then leaves it alone.
func (t *txEngine) put(s *stateful) {
	t.mu.Lock()
	if t.active[s.id] == s {
		s.inUse, s.purpose = false, ""
	}
	t.mu.Unlock()
}

// end unregisters s (locked by the caller) and returns its connection to the pool, or
// closes it when its state is unknown.
func (t *txEngine) end(s *stateful, reason string, discard bool) {
	t.e.stats.txEnded(s, reason, t.now()) // txlog.go
	t.mu.Lock()
	delete(t.active, s.id)
	t.rememberLocked(s.id, reason)
	t.mu.Unlock()
	if discard || s.reserved || s.conn().IsClosed() {
		s.pc.Discard()
	} else {
		s.pc.Recycle()
	}
}

func (t *txEngine) rememberLocked(id int64, reason string) {
	t.endedIDs[id] = ended{at: t.now(), reason: reason}
	t.endedFIFO = append(t.endedFIFO, id)
	if len(t.endedFIFO) > maxEnded {
		delete(t.endedIDs, t.endedFIFO[0])
		t.endedFIFO = t.endedFIFO[1:]
	}
}

// renewID gives a reserved connection a new ID after its transaction ended (vtgate replaces
// the one it stored); the old ID is remembered as ended.
func (t *txEngine) renewID(s *stateful, reason string) int64 {
	t.e.stats.txEnded(s, reason, t.now())
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.active, s.id)
	t.rememberLocked(s.id, reason)
	s.id = t.nextID.Add(1)
	s.renew(t.now())
	t.active[s.id] = s
	return s.id
}

// exec runs a statement on a locked stateful connection; the query's deadline is capped by
// the transaction's remaining time. A killed or broken connection ends the transaction.
func (t *txEngine) exec(ctx context.Context, s *stateful, sql string, maxRows int) (*querypb.QueryResult, error) {
	return t.execRequest(ctx, s, internalRequest("", sql), maxRows)
}

func (t *txEngine) execRequest(ctx context.Context, s *stateful, r *request, maxRows int) (*querypb.QueryResult, error) {
	ctx, cancel, err := t.withinLifetime(ctx, s)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if r.plan != nil {
		s.txl.add(r.SQL) // a caller's statement, for the transaction log
	}
	res, killed, err := t.e.runDML(ctx, s.conn(), r, maxRows, s.inTx)
	if killed || s.conn().IsClosed() {
		return nil, t.endAfterKill(ctx, s, r, err)
	}
	return res, err
}

// withinLifetime caps ctx at the connection's expiry. A connection already past it is ended
// here, as the killer would have, and the caller gets the killer's error.
func (t *txEngine) withinLifetime(ctx context.Context, s *stateful) (context.Context, context.CancelFunc, error) {
	if s.expires.IsZero() {
		return ctx, func() {}, nil
	}
	if !t.now().Before(s.expires) {
		reason := fmt.Sprintf("exceeded timeout: %v", s.timeout)
		t.end(s, reason, true)
		t.e.kills.WithLabelValues("transaction timeout").Inc()
		return nil, nil, rpcerr.New(vtrpcpb.Code_ABORTED, "transaction %d: ended at %s (%s)",
			s.id, t.now().Format("2006-01-02 15:04:05.000 MST"), reason)
	}
	ctx, cancel := context.WithDeadline(ctx, s.expires)
	return ctx, cancel, nil
}

// endAfterKill ends s after its statement was killed or its connection lost; when the kill
// came from the transaction's own expiry, the error says so as the killer's would.
//
// err may be nil: the statement finished just as the kill landed. The connection, and with
// it the transaction's work, is gone all the same, so the caller must not see success.
func (t *txEngine) endAfterKill(ctx context.Context, s *stateful, r *request, err error) error {
	if err == nil {
		err = interrupted(ctx, r)
	}
	if !s.expires.IsZero() && !t.now().Before(s.expires) {
		reason := fmt.Sprintf("exceeded timeout: %v", s.timeout)
		t.end(s, reason, true)
		return rpcerr.New(vtrpcpb.Code_ABORTED, "transaction %d: ended at %s (%s)",
			s.id, t.now().Format("2006-01-02 15:04:05.000 MST"), reason)
	}
	t.end(s, "connection killed or lost: "+rpcerr.Code(err).String(), true)
	return err
}

// beginStatement is the SQL that opens a transaction with the requested isolation and access mode.
func beginStatements(o *querypb.ExecuteOptions, readOnlyTablet bool) []string {
	var pre []string
	switch o.GetTransactionIsolation() {
	case querypb.ExecuteOptions_REPEATABLE_READ:
		pre = append(pre, "set transaction isolation level repeatable read")
	case querypb.ExecuteOptions_READ_COMMITTED:
		pre = append(pre, "set transaction isolation level read committed")
	case querypb.ExecuteOptions_READ_UNCOMMITTED:
		pre = append(pre, "set transaction isolation level read uncommitted")
	case querypb.ExecuteOptions_SERIALIZABLE:
		pre = append(pre, "set transaction isolation level serializable")
	case querypb.ExecuteOptions_CONSISTENT_SNAPSHOT_READ_ONLY:
		return append(pre, "start transaction with consistent snapshot, read only")
	case querypb.ExecuteOptions_AUTOCOMMIT:
		return nil
	}
	var modes []string
	for _, m := range o.GetTransactionAccessMode() {
		switch m {
		case querypb.ExecuteOptions_CONSISTENT_SNAPSHOT:
			modes = append(modes, "with consistent snapshot")
		case querypb.ExecuteOptions_READ_ONLY:
			modes = append(modes, "read only")
		case querypb.ExecuteOptions_READ_WRITE:
			modes = append(modes, "read write")
		}
	}
	if readOnlyTablet && !slices.Contains(modes, "read only") {
		modes = append(modes, "read only")
	}
	if len(modes) == 0 {
		return append(pre, "begin")
	}
	stmt := "start transaction"
	for i, m := range modes {
		if i > 0 {
			stmt += ","
		}
		stmt += " " + m
	}
	return append(pre, stmt)
}

// begin starts a transaction on s (locked).
func (t *txEngine) begin(ctx context.Context, s *stateful, o *querypb.ExecuteOptions, readOnlyTablet bool) error {
	for _, m := range o.GetTransactionAccessMode() {
		if m == querypb.ExecuteOptions_READ_WRITE && readOnlyTablet {
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "cannot start a read write transaction on a read only tablet")
		}
	}
	for _, stmt := range beginStatements(o, readOnlyTablet) {
		if _, err := t.exec(ctx, s, stmt, 0); err != nil {
			return err
		}
	}
	// The killer reads expires and timeout under mu while we hold s: write them under mu too.
	t.mu.Lock()
	s.inTx = true
	s.timeout = t.timeoutFor(o)
	s.renew(t.now())
	t.mu.Unlock()
	s.txl.began(t.now())
	return nil
}

// finish commits or rolls back the transaction of id. A reserved connection stays and gets a
// new ID, returned as newReserved; a plain transaction's connection goes back to the pool.
func (t *txEngine) finish(ctx context.Context, id int64, commit bool) (newReserved int64, err error) {
	verb, reason := "rollback", "transaction rolled back"
	if commit {
		verb, reason = "commit", "transaction committed"
	}
	s, err := t.get(id, verb)
	if err != nil {
		return 0, err
	}
	if s.inTx {
		if _, err := t.exec(ctx, s, verb, 0); err != nil {
			if s.conn().IsClosed() {
				return 0, err // exec ended it
			}
			t.end(s, verb+" failed", true)
			return 0, err
		}
		s.inTx = false
	}
	if s.reserved {
		nid := t.renewID(s, reason)
		t.put(s)
		return nid, nil
	}
	t.end(s, reason, false)
	return 0, nil
}

// release ends a reserved connection (rolling back any transaction) or a transaction.
func (t *txEngine) release(ctx context.Context, id int64) error {
	s, err := t.get(id, "release")
	if err != nil {
		return err
	}
	if s.inTx && !s.reserved {
		if _, err := t.exec(ctx, s, "rollback", 0); err != nil {
			if !s.conn().IsClosed() {
				t.end(s, "release connection", true)
			}
			return nil
		}
	}
	t.end(s, "release connection", s.reserved)
	return nil
}

// killer ends transactions and reserved connections past their timeout, every tenth of the
// shortest timeout (as vttablet). One running a statement has that statement killed; the
// caller then finds the transaction ended.
func (t *txEngine) killer(ctx context.Context) {
	defer close(t.killerDone)
	every := min(t.cfg.TxTimeout, t.cfg.OLAPTxTimeout) / 10
	tick := time.NewTicker(max(every, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.killExpired()
		}
	}
}

func (t *txEngine) killExpired() {
	now := t.now()
	var idle []*stateful
	t.mu.Lock()
	for _, s := range t.active {
		// One in use is running a statement whose deadline is capped by s.expires: that
		// statement is killed by its own deadline and the transaction ends with it.
		if s.expires.IsZero() || now.Before(s.expires) || s.inUse {
			continue
		}
		s.inUse, s.purpose = true, "for tx killer rollback"
		idle = append(idle, s)
	}
	t.mu.Unlock()
	for _, s := range idle {
		t.log.Warn("killing transaction", zap.Int64("id", s.id), zap.Duration("exceeded_timeout", s.timeout))
		t.end(s, fmt.Sprintf("exceeded timeout: %v", s.timeout), true) // closing rolls back
		t.e.kills.WithLabelValues("transaction timeout").Inc()
	}
}

// count returns how many stateful connections are open.
func (t *txEngine) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.active)
}

// drain waits until no transaction is open or ctx ends.
func (t *txEngine) waitEmpty(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for t.count() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// shutdown refuses new transactions, stops the killer and rolls back (by closing) whatever is
// still open, giving reason to callers that come back for an ended ID. A statement still
// running is killed; its request then ends the transaction itself (never close a connection
// another goroutine is using). The pools stay open: open makes the engine usable again.
func (t *txEngine) shutdown(reason string) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	stop, done := t.stopKiller, t.killerDone
	var idle []*stateful
	var busy []uint32
	for _, s := range t.active {
		if s.inUse {
			busy = append(busy, s.conn().ID())
			continue
		}
		s.inUse = true
		idle = append(idle, s)
	}
	t.mu.Unlock()
	stop()
	<-done
	for _, s := range idle {
		t.end(s, reason, true) // closing the connection rolls back
	}
	for _, id := range busy {
		t.e.kill(id, reason)
	}
}

// close shuts the engine down for good and closes its pools.
func (t *txEngine) close() {
	t.shutdown("tablet shutting down")
	t.txPool.Close()
	t.foundRow.Close()
}
