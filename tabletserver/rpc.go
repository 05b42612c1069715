package tabletserver

import (
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Call is one queryservice request, decoded by the gRPC edge.
type Call struct {
	Target           *querypb.Target
	Caller           string   // VTGateCallerID.username: the immediate caller
	CallerGroups     []string // VTGateCallerID.groups
	SQL              string
	BindVars         map[string]*querypb.BindVariable
	TxID, ReservedID int64
	Options          *querypb.ExecuteOptions
	PreQueries       []string // Begin*: after BEGIN; Reserve*: session settings
	PostBeginQueries []string // ReserveBegin*: after BEGIN
}

// Results of calls that may create a transaction or reserved connection: the IDs are set
// whenever the creation succeeded, even when the statement then failed (Err), so vtgate can
// release them — vttablet's in-band error contract.
type Outcome struct {
	Result     *querypb.QueryResult
	TxID       int64
	ReservedID int64
	Err        error
}

// Alias is the tablet alias put in responses.
func (s *Server) Alias() *topodatapb.TabletAlias { return s.cfg.Alias }

// connID is the stateful connection a call is bound to (0: none).
func (c *Call) connID() (int64, error) {
	if c.TxID != 0 && c.ReservedID != 0 && c.TxID != c.ReservedID {
		return 0, rpcerr.New(vtrpcpb.Code_INTERNAL, "[BUG] transactionID and reserveID must match if both are non-zero")
	}
	if c.TxID != 0 {
		return c.TxID, nil
	}
	return c.ReservedID, nil
}

// queryContext applies the query timeout: the sooner of --queryserver-config-query-timeout
// (or the request's authoritative_timeout) and the caller's own deadline. DBA workload runs
// without a tablet-side limit.
func (s *Server) queryContext(ctx context.Context, o *querypb.ExecuteOptions) (context.Context, context.CancelFunc) {
	d := s.cfg.Query.QueryTimeout
	if at, ok := o.GetTimeout().(*querypb.ExecuteOptions_AuthoritativeTimeout); ok {
		d = time.Duration(at.AuthoritativeTimeout) * time.Millisecond
	}
	if o.GetWorkload() == querypb.ExecuteOptions_DBA || d <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, func() {} // the caller's deadline comes first: no second timer per query
	}
	return context.WithTimeout(ctx, d)
}

// readOnlyTablet: transactions on a non-primary are read only. Read from the admission
// snapshot, without the state lock.
func (s *Server) readOnlyTablet() bool {
	return s.adm.Load().tabletType != topodatapb.TabletType_PRIMARY
}

// Execute runs one statement, inside the call's transaction or reserved connection if any.
func (s *Server) Execute(ctx context.Context, c *Call) (*querypb.QueryResult, error) {
	id, err := c.connID()
	if err != nil {
		return nil, err
	}
	if err := s.StartRequest(c.Target, id != 0); err != nil {
		return nil, err
	}
	defer s.EndRequest()
	r, err := s.prepare(c, true)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := s.execute(ctx, c, r, id)
	s.stats.record(c.SQL, r.plan, time.Since(start), res, err)
	return res, err
}

// execute runs a prepared statement for Execute.
func (s *Server) execute(ctx context.Context, c *Call, r *request, id int64) (*querypb.QueryResult, error) {
	hint, hinted, err := hintTimeout(r.plan.Directives)
	if err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	if hinted {
		// The hint replaces the configured query timeout; the caller's deadline still applies.
		ctx, cancel = context.WithTimeout(ctx, hint)
	} else {
		ctx, cancel = s.queryContext(ctx, c.Options)
	}
	defer cancel()
	var res *querypb.QueryResult
	if id == 0 {
		res, err = s.executeRead(ctx, r, s.adm.Load().tabletType)
	} else {
		var st *stateful
		if st, err = s.eng.tx.get(id, "execute"); err != nil {
			return nil, err
		}
		res, err = s.eng.tx.execRequest(ctx, st, r, s.cfg.Query.MaxResultSize)
		s.eng.tx.put(st)
		s.renameDatabase(res, r)
	}
	if w := s.cfg.Query.WarnResultSize; w > 0 && res != nil && len(res.Rows) > w {
		s.eng.largeResults.Inc()
		s.log.Warn("result above --queryserver-config-warn-result-size", zap.Int("rows", len(res.Rows)),
			zap.String("caller", c.Caller), zap.String("sql", truncateSQL(c.SQL)))
	}
	return res, err
}

// renameDatabase shows the keyspace, not the MySQL database, as a column's database when all
// field metadata was asked for — as vttablet does, so clients of vtgate see keyspace names.
func (s *Server) renameDatabase(res *querypb.QueryResult, r *request) {
	if res == nil || r.fields != mysqlconn.FieldsAll || s.cfg.DBName == s.cfg.Keyspace {
		return
	}
	for _, f := range res.Fields {
		if f.Database == s.cfg.DBName {
			f.Database = s.cfg.Keyspace
		}
	}
}

// StreamExecute streams one statement's result: fields first, then rows in batches.
func (s *Server) StreamExecute(ctx context.Context, c *Call, send func(*querypb.QueryResult) error) error {
	id, err := c.connID()
	if err != nil {
		return err
	}
	if err := s.StartRequest(c.Target, id != 0); err != nil {
		return err
	}
	defer s.EndRequest()
	r, err := s.prepare(c, false)
	if err != nil {
		return err
	}
	if id == 0 {
		// Outside a transaction vttablet sets no tablet-side timeout on streams; the
		// caller's deadline and disconnects still apply (and kill the statement).
		return s.eng.streamNoTx(ctx, r, send)
	}
	st, err := s.eng.tx.get(id, "stream execute")
	if err != nil {
		return err
	}
	err = s.eng.tx.streamRequest(ctx, st, r, send)
	s.eng.tx.put(st)
	return err
}

// Begin starts a transaction (on a new connection) and returns its ID.
func (s *Server) Begin(ctx context.Context, c *Call) (int64, error) {
	out := s.beginExecute(ctx, c, false, nil)
	return out.TxID, out.Err
}

// BeginExecute begins (on the call's reserved connection, if any), runs PreQueries, then the
// statement. See Outcome for the in-band error contract.
func (s *Server) BeginExecute(ctx context.Context, c *Call) Outcome {
	return s.beginExecute(ctx, c, true, nil)
}

// BeginStreamExecute is BeginExecute with a streamed result.
func (s *Server) BeginStreamExecute(ctx context.Context, c *Call, send func(*querypb.QueryResult) error) Outcome {
	return s.beginExecute(ctx, c, true, send)
}

func (s *Server) beginExecute(ctx context.Context, c *Call, withQuery bool, send func(*querypb.QueryResult) error) Outcome {
	if err := s.StartRequest(c.Target, false); err != nil {
		return Outcome{Err: err}
	}
	defer s.EndRequest()
	var st *stateful
	var err error
	if c.ReservedID != 0 {
		if st, err = s.eng.tx.get(c.ReservedID, "begin"); err != nil {
			return Outcome{Err: err}
		}
	} else if st, err = s.eng.tx.create(ctx, c.Options, "begin"); err != nil {
		return Outcome{Err: err}
	}
	if err := s.eng.tx.begin(ctx, st, c.Options, s.readOnlyTablet()); err != nil {
		if c.ReservedID == 0 {
			s.eng.tx.end(st, "begin failed", true)
			return Outcome{Err: err}
		}
		s.eng.tx.put(st)
		return Outcome{ReservedID: c.ReservedID, Err: err}
	}
	out := Outcome{TxID: st.id}
	if c.ReservedID != 0 {
		out.ReservedID = st.id
	}
	out.Result, out.Err = s.runInConn(ctx, st, c, c.PreQueries, withQuery, send)
	s.eng.tx.put(st)
	return out
}

// runInConn runs the setup statements then (if withQuery) the call's statement on st.
func (s *Server) runInConn(ctx context.Context, st *stateful, c *Call, setup []string, withQuery bool, send func(*querypb.QueryResult) error) (*querypb.QueryResult, error) {
	qctx, cancel := s.queryContext(ctx, c.Options)
	defer cancel()
	for _, q := range setup {
		if _, err := s.eng.tx.exec(qctx, st, q, 0); err != nil {
			return nil, err
		}
	}
	if !withQuery {
		return nil, nil
	}
	r, err := s.prepare(c, send == nil)
	if err != nil {
		return nil, err
	}
	if send != nil {
		return nil, s.eng.tx.streamRequest(ctx, st, r, send)
	}
	return s.eng.tx.execRequest(qctx, st, r, s.cfg.Query.MaxResultSize)
}

// Commit commits transaction c.TxID; a reserved connection stays and gets a new ID.
func (s *Server) Commit(ctx context.Context, c *Call) (int64, error) {
	return s.finish(ctx, c, true)
}

// Rollback rolls back transaction c.TxID; a reserved connection stays and gets a new ID.
func (s *Server) Rollback(ctx context.Context, c *Call) (int64, error) {
	return s.finish(ctx, c, false)
}

func (s *Server) finish(ctx context.Context, c *Call, commit bool) (int64, error) {
	if err := s.StartRequest(c.Target, true); err != nil {
		return 0, err
	}
	defer s.EndRequest()
	if c.TxID == 0 {
		return 0, nil // nothing to do, as vttablet
	}
	return s.eng.tx.finish(ctx, c.TxID, commit)
}

// ReserveExecute reserves a connection (or the call's transaction's), applies the session
// settings in PreQueries, and runs the statement.
func (s *Server) ReserveExecute(ctx context.Context, c *Call) Outcome {
	return s.reserve(ctx, c, false, nil)
}

// ReserveStreamExecute is ReserveExecute with a streamed result.
func (s *Server) ReserveStreamExecute(ctx context.Context, c *Call, send func(*querypb.QueryResult) error) Outcome {
	return s.reserve(ctx, c, false, send)
}

// ReserveBeginExecute reserves a connection, applies PreQueries, begins, runs
// PostBeginQueries and the statement; the transaction and reserved IDs are equal.
func (s *Server) ReserveBeginExecute(ctx context.Context, c *Call) Outcome {
	return s.reserve(ctx, c, true, nil)
}

// ReserveBeginStreamExecute is ReserveBeginExecute with a streamed result.
func (s *Server) ReserveBeginStreamExecute(ctx context.Context, c *Call, send func(*querypb.QueryResult) error) Outcome {
	return s.reserve(ctx, c, true, send)
}

func (s *Server) reserve(ctx context.Context, c *Call, begin bool, send func(*querypb.QueryResult) error) Outcome {
	if err := s.StartRequest(c.Target, c.TxID != 0); err != nil {
		return Outcome{Err: err}
	}
	defer s.EndRequest()
	var st *stateful
	var err error
	if c.TxID != 0 && !begin {
		if st, err = s.eng.tx.get(c.TxID, "reserve"); err != nil {
			return Outcome{Err: err}
		}
	} else if st, err = s.eng.tx.create(ctx, c.Options, "reserve"); err != nil {
		return Outcome{Err: err}
	}
	st.reserved = true
	out := Outcome{ReservedID: st.id}
	if st.inTx {
		out.TxID = st.id
	}
	setupCtx, cancel := s.queryContext(ctx, c.Options)
	for _, q := range c.PreQueries {
		if _, err := s.eng.tx.exec(setupCtx, st, q, 0); err != nil {
			cancel()
			s.eng.tx.put(st)
			out.Err = err
			return out
		}
	}
	cancel()
	if begin {
		if err := s.eng.tx.begin(ctx, st, c.Options, s.readOnlyTablet()); err != nil {
			s.eng.tx.put(st)
			out.Err = err
			return out
		}
		out.TxID = st.id
	}
	out.Result, out.Err = s.runInConn(ctx, st, c, c.PostBeginQueries, true, send)
	s.eng.tx.put(st)
	return out
}

// Release ends the reserved connection (and its transaction) or the transaction of the call.
func (s *Server) Release(ctx context.Context, c *Call) error {
	id, err := c.connID()
	if err != nil {
		return err
	}
	if id == 0 {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "connection ID and transaction ID do not exist")
	}
	if err := s.StartRequest(c.Target, true); err != nil {
		return err
	}
	defer s.EndRequest()
	return s.eng.tx.release(ctx, id)
}

// prepare plans and binds the call's statement and checks the table ACL on every table it
// touches and the statement limits — on every path that runs a statement.
func (s *Server) prepare(c *Call, limited bool) (*request, error) {
	r, err := s.eng.prepare(c.Caller, c.SQL, c.BindVars, c.Options, limited)
	if err != nil {
		return nil, err
	}
	if err := s.acl.check(r.plan, c.Caller, c.CallerGroups); err != nil {
		return nil, err
	}
	if err := s.checkRules(c, r); err != nil {
		return nil, err
	}
	if s.cfg.Query.RejectDMLWithoutWhere && r.plan.WithoutWhere {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"%s without a WHERE clause is refused (--queryserver-config-reject-dml-without-where)", r.plan.Type)
	}
	return r, nil
}

// hintTimeout reads /*vt+ QUERY_TIMEOUT_MS=n */. A bad value is an error naming the hint,
// never silently ignored.
func hintTimeout(p map[string]string) (time.Duration, bool, error) {
	v, ok := p["QUERY_TIMEOUT_MS"]
	if !ok {
		return 0, false, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, false, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "bad query hint QUERY_TIMEOUT_MS=%q: want a whole number of milliseconds >= 0", v)
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}
