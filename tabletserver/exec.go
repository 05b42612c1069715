package tabletserver

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/pool"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// request is one statement on its way to MySQL: the call it came from (caller, SQL as
// received, bind variables, options) and what the executor derived from it. Statements
// tabletd runs itself (BEGIN, savepoints, snapshot setup) get a Call of their own
// (internalRequest), so every statement is registered, killed and reported the same way.
type request struct {
	*Call
	plan   *plan.Plan // nil for internal statements
	final  string     // SQL after bind-variable substitution
	fields mysqlconn.FieldDetail
	// reader marks a snapshot reader's statement (reader.go): a state transition, which ends
	// the old state's work, leaves it running.
	reader bool
	// bufferSize overrides the stream buffer size of a streamed statement (0: configured).
	bufferSize int
	// stmt is the caller statement r runs for, timed for the statistics and the query log
	// (querystats.go); nil for tabletd's own statements.
	stmt *statement
}

// internalRequest is a statement tabletd runs itself, on caller's behalf.
func internalRequest(caller, sql string) *request {
	return &request{Call: &Call{Caller: caller, SQL: sql}, final: sql, fields: mysqlconn.FieldsNone}
}

func fieldDetail(o *querypb.ExecuteOptions) mysqlconn.FieldDetail {
	switch o.GetIncludedFields() {
	case querypb.ExecuteOptions_TYPE_ONLY:
		return mysqlconn.FieldsTypeOnly
	case querypb.ExecuteOptions_ALL:
		return mysqlconn.FieldsAll
	}
	return mysqlconn.FieldsTypeAndName
}

// prepare plans and binds c's statement and checks it — the table ACL on every table it
// touches, the query rules, the statement limits — on every path that runs a caller's
// statement. limited: the result is bounded by --queryserver-config-max-result-size (not
// for streams), so a plain SELECT gets vttablet's LIMIT :#maxLimit where the plan has a safe
// place for it; #maxLimit is added to the call's own bind variables, as vttablet does.
func (e *executor) prepare(c *Call, limited bool) (*request, error) {
	p, err := e.getPlan(c.SQL, c.Options.GetSkipQueryPlanCache() || c.Options.GetHasCreatedTempTables())
	if err != nil {
		return nil, err
	}
	q := p.Query
	if limited && p.LimitQuery != nil {
		if c.BindVars == nil {
			c.BindVars = map[string]*querypb.BindVariable{}
		}
		c.BindVars["#maxLimit"] = e.maxLimit
		q = p.LimitQuery
	}
	bufp := e.bufPool.Get().(*[]byte)
	buf, err := q.Generate((*bufp)[:0], c.BindVars)
	if err != nil {
		e.bufPool.Put(bufp)
		return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "")
	}
	r := &request{Call: c, plan: p, final: string(buf), fields: fieldDetail(c.Options)}
	*bufp = buf
	e.bufPool.Put(bufp)
	if err := e.acl.check(p, c.Caller, c.CallerGroups); err != nil {
		return nil, err
	}
	if err := e.checkRules(r); err != nil {
		return nil, err
	}
	if e.cfg.RejectDMLWithoutWhere && p.WithoutWhere {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"%s without a WHERE clause is refused (--queryserver-config-reject-dml-without-where)", p.Type)
	}
	return r, nil
}

// execute runs c's statement for Execute: outside any stateful connection (id 0), or on the
// transaction or reserved connection id. tt is the tablet type the request was admitted for.
func (e *executor) execute(ctx context.Context, c *Call, id int64, tt topodatapb.TabletType) (*querypb.QueryResult, error) {
	stmt := e.stats.begin("Execute", c, id)
	r, err := e.prepare(c, true)
	if err != nil {
		e.stats.end(&stmt, nil, nil, err)
		return nil, err
	}
	r.stmt = &stmt
	res, err := e.executePrepared(ctx, r, id, tt)
	e.stats.end(&stmt, r.plan, res, err)
	return res, err
}

func (e *executor) executePrepared(ctx context.Context, r *request, id int64, tt topodatapb.TabletType) (*querypb.QueryResult, error) {
	hint, hinted, err := hintTimeout(r.plan.Directives)
	if err != nil {
		return nil, err
	}
	var cancel context.CancelFunc
	if hinted {
		// The hint replaces the configured query timeout; the caller's deadline still applies.
		ctx, cancel = context.WithTimeout(ctx, hint)
	} else {
		ctx, cancel = e.queryContext(ctx, r.Options)
	}
	defer cancel()
	var res *querypb.QueryResult
	if id == 0 {
		res, err = e.executeRead(ctx, r, tt)
	} else {
		var st *stateful
		if st, err = e.tx.get(id, "execute"); err != nil {
			return nil, err
		}
		res, err = e.tx.execRequest(ctx, st, r, e.cfg.MaxResultSize)
		e.tx.put(st)
		e.renameDatabase(res, r)
	}
	if w := e.cfg.WarnResultSize; w > 0 && res != nil && len(res.Rows) > w {
		e.largeResults.Inc()
		e.log.Warn("result above --queryserver-config-warn-result-size", zap.Int("rows", len(res.Rows)),
			zap.String("caller", r.Caller), zap.String("sql", truncateSQL(r.SQL)))
	}
	return res, err
}

// renameDatabase shows the keyspace, not the MySQL database, as a column's database when all
// field metadata was asked for — as vttablet does, so clients of vtgate see keyspace names.
func (e *executor) renameDatabase(res *querypb.QueryResult, r *request) {
	if res == nil || r.fields != mysqlconn.FieldsAll || e.dbName == e.keyspace {
		return
	}
	for _, f := range res.Fields {
		if f.Database == e.dbName {
			f.Database = e.keyspace
		}
	}
}

// streamExecute streams c's statement for StreamExecute, outside a stateful connection (id 0)
// or on one.
func (e *executor) streamExecute(ctx context.Context, c *Call, id int64, send func(*querypb.QueryResult) error) (err error) {
	stmt := e.stats.begin("StreamExecute", c, id)
	var r *request
	defer func() { e.stats.end(&stmt, r.planOrNil(), nil, err) }()
	if r, err = e.prepare(c, false); err != nil {
		return err
	}
	r.stmt, send = &stmt, stmt.counting(send)
	if id == 0 {
		// Outside a transaction vttablet sets no tablet-side timeout on streams; the
		// caller's deadline and disconnects still apply (and kill the statement).
		return e.streamNoTx(ctx, r, send)
	}
	st, err := e.tx.get(id, "stream execute")
	if err != nil {
		return err
	}
	err = e.tx.streamRequest(ctx, st, r, send)
	e.tx.put(st)
	return err
}

// runInConn runs the setup statements then (if withQuery) the call's statement on st.
func (e *executor) runInConn(ctx context.Context, st *stateful, c *Call, setup []string, withQuery bool, send func(*querypb.QueryResult) error) (*querypb.QueryResult, error) {
	st.txl.caller = c.Caller // who began or uses it, for the transaction log
	qctx, cancel := e.queryContext(ctx, c.Options)
	defer cancel()
	for _, q := range setup {
		if _, err := e.tx.exec(qctx, st, q, 0); err != nil {
			return nil, err
		}
	}
	if !withQuery {
		return nil, nil
	}
	stmt := e.stats.begin(inConnMethod(st, c, send != nil), c, st.id)
	r, err := e.prepare(c, send == nil)
	if err != nil {
		e.stats.end(&stmt, nil, nil, err)
		return nil, err
	}
	r.stmt = &stmt
	if send != nil {
		err = e.tx.streamRequest(ctx, st, r, stmt.counting(send))
		e.stats.end(&stmt, r.plan, nil, err)
		return nil, err
	}
	res, err := e.tx.execRequest(qctx, st, r, e.cfg.MaxResultSize)
	e.stats.end(&stmt, r.plan, res, err)
	return res, err
}

// queryContext applies the query timeout: the sooner of --queryserver-config-query-timeout
// (or the request's authoritative_timeout) and the caller's own deadline. DBA workload runs
// without a tablet-side limit.
func (e *executor) queryContext(ctx context.Context, o *querypb.ExecuteOptions) (context.Context, context.CancelFunc) {
	d := e.cfg.QueryTimeout
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

// run executes r on c. If ctx ends first, the statement is killed from a DBA connection
// (KILL QUERY, or KILL for a transaction whose state is lost anyway) and the error says
// whether the deadline passed or the caller went away. killed reports that a kill was issued:
// the connection must then not be reused, a late kill could hit its next statement. The
// statement is listed in /livequeryz while it runs; one killed from there fails as canceled.
func (e *executor) run(ctx context.Context, c *mysqlconn.Conn, r *request, maxRows int) (res *querypb.QueryResult, killed bool, err error) {
	e.register(c, r, false)
	// The connection's kill hook (set by the pool's connector) issues the KILL when ctx ends.
	start := time.Now()
	res, err = c.Execute(ctx, r.final, maxRows, r.fields)
	e.stats.mysqlDone(r, "Exec", time.Since(start))
	terminated := e.live.remove(c.ID()) // a /livequeryz KILL was or will be sent
	killed = c.Canceled() || terminated
	if err == nil && !terminated {
		return res, killed, nil
	}
	if killed || ctx.Err() != nil {
		return nil, true, interrupted(ctx, r)
	}
	if errors.Is(err, mysqlconn.ErrRowsExceeded) {
		return nil, false, rpcerr.New(vtrpcpb.Code_ABORTED, "caller id: %s: row count exceeded %d", r.Caller, maxRows)
	}
	return nil, false, mysqlError(err, r.Caller, r.SQL, bindNames(r.BindVars))
}

// interrupted is the error of a statement killed because its context ended, in the
// errno/sqlstate form vtgate passes on to its MySQL clients.
func interrupted(ctx context.Context, r *request) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return rpcerr.New(vtrpcpb.Code_DEADLINE_EXCEEDED,
			"Query execution was interrupted, maximum statement execution time exceeded (errno 3024) (sqlstate HY000) (CallerID: %s): Sql: %q", r.Caller, truncateSQL(r.SQL))
	}
	return rpcerr.New(vtrpcpb.Code_CANCELED,
		"Query execution was interrupted (errno 1317) (sqlstate 70100) (CallerID: %s): Sql: %q", r.Caller, truncateSQL(r.SQL))
}

func bindNames(bv map[string]*querypb.BindVariable) []string {
	if len(bv) == 0 {
		return nil
	}
	names := make([]string, 0, len(bv))
	for k := range bv {
		names = append(names, k)
	}
	return names
}

// executeNoTx runs a statement outside any transaction or reserved connection.
func (e *executor) executeNoTx(ctx context.Context, r *request) (*querypb.QueryResult, error) {
	switch class(r.plan.Type) {
	case classRead:
		return e.onPool(ctx, e.conns, r, e.cfg.MaxResultSize, false)
	case classWrite:
		// Autocommit writes take a transaction-pool connection, so the transaction cap bounds
		// write concurrency as in vttablet.
		return e.onPool(ctx, e.tx.poolFor(r.Options), r, 0, false)
	default:
		// Statements that change session state (SET, LOCK TABLES, temporary tables, …) run on
		// a connection that is thrown away afterwards, so no pooled connection ever carries them.
		return e.onPool(ctx, e.tx.poolFor(r.Options), r, e.cfg.MaxResultSize, true)
	}
}

func (e *executor) onPool(ctx context.Context, p *dbPool, r *request, maxRows int, discard bool) (*querypb.QueryResult, error) {
	pc, err := p.Get(ctx, nil)
	if err != nil {
		return nil, poolError(err, p)
	}
	res, killed, err := e.runDML(ctx, pc.Conn(), r, maxRows, false)
	if killed || discard || pc.Conn().IsClosed() {
		pc.Discard()
	} else {
		pc.Recycle()
	}
	return res, err
}

// poolError gives pool failures the codes vtgate expects.
func poolError(err error, p *dbPool) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return rpcerr.Wrap(vtrpcpb.Code_DEADLINE_EXCEEDED, err, "%s: waiting for a connection", p.Name())
	case errors.Is(err, context.Canceled):
		return rpcerr.Wrap(vtrpcpb.Code_CANCELED, err, "%s: waiting for a connection", p.Name())
	case errors.Is(err, pool.ErrTimeout), errors.Is(err, pool.ErrPoolFull):
		return rpcerr.Wrap(vtrpcpb.Code_RESOURCE_EXHAUSTED, err, "%s", p.Name())
	case errors.Is(err, pool.ErrPoolClosed):
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, rpcerr.NotServing)
	}
	// A dial failure: MySQL is down or refuses us.
	var se *mysqlconn.SQLError
	if errors.As(err, &se) {
		return rpcerr.Wrap(rpcerr.ErrnoCode(se.Num), err, "%s: connecting to MySQL", p.Name())
	}
	return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "%s: connecting to MySQL", p.Name())
}

// statement classes decide which pool a statement outside a transaction uses.
const (
	classRead = iota
	classWrite
	classSession
)

func class(t plan.Type) int {
	switch t {
	case plan.Select, plan.SelectImpossible, plan.Show, plan.OtherRead, plan.SelectStream, plan.SelectNoLimit:
		return classRead
	case plan.Insert, plan.Update, plan.Delete, plan.UpdateLimit, plan.DeleteLimit, plan.DDL,
		plan.Load, plan.Flush, plan.CallProcedure, plan.Nextval, plan.OtherAdmin:
		return classWrite
	}
	return classSession
}
