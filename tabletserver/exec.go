package tabletserver

import (
	"context"
	"errors"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/pool"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// request is one statement to run, with everything the execution path needs to know.
type request struct {
	caller   string // immediate caller (VTGateCallerID.username), for messages
	sql      string // as received, with bind variables
	bindVars map[string]*querypb.BindVariable
	plan     *plan.Plan
	final    string // SQL after bind-variable substitution
	fields   mysqlconn.FieldDetail
	options  *querypb.ExecuteOptions
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

// prepare plans the statement and substitutes its bind variables. limited: the result is
// bounded by --queryserver-config-max-result-size (not for streams), so a plain SELECT gets
// vttablet's LIMIT :#maxLimit where the plan has a safe place for it.
func (e *engine) prepare(caller, sql string, bv map[string]*querypb.BindVariable, o *querypb.ExecuteOptions, limited bool) (*request, error) {
	p, err := e.getPlan(sql, o.GetSkipQueryPlanCache() || o.GetHasCreatedTempTables())
	if err != nil {
		return nil, err
	}
	q := p.Query
	if limited && p.LimitQuery != nil {
		if bv == nil {
			bv = map[string]*querypb.BindVariable{}
		}
		bv["#maxLimit"] = e.maxLimit // the request's own map, as vttablet does
		q = p.LimitQuery
	}
	bufp := e.bufPool.Get().(*[]byte)
	buf, err := q.Generate((*bufp)[:0], bv)
	if err != nil {
		e.bufPool.Put(bufp)
		return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "")
	}
	final := string(buf)
	*bufp = buf
	e.bufPool.Put(bufp)
	return &request{caller: caller, sql: sql, bindVars: bv, plan: p, final: final, fields: fieldDetail(o), options: o}, nil
}

// run executes r on c. If ctx ends first, the statement is killed from a DBA connection
// (KILL QUERY, or KILL for a transaction whose state is lost anyway) and the error says
// whether the deadline passed or the caller went away. killed reports that a kill was issued:
// the connection must then not be reused, a late kill could hit its next statement. The
// statement is listed in /livequeryz while it runs; one killed from there fails as canceled.
func (e *engine) run(ctx context.Context, c *mysqlconn.Conn, r *request, maxRows int) (res *querypb.QueryResult, killed bool, err error) {
	e.register(c, r, false)
	// The connection's kill hook (set by the pool's connector) issues the KILL when ctx ends.
	res, err = c.Execute(ctx, r.final, maxRows, r.fields)
	terminated := e.live.remove(c.ID()) // a /livequeryz KILL was or will be sent
	killed = c.Canceled() || terminated
	if err == nil && !terminated {
		return res, killed, nil
	}
	if killed || ctx.Err() != nil {
		return nil, true, interrupted(ctx, r)
	}
	if errors.Is(err, mysqlconn.ErrRowsExceeded) {
		return nil, false, rpcerr.New(vtrpcpb.Code_ABORTED, "caller id: %s: row count exceeded %d", r.caller, maxRows)
	}
	return nil, false, mysqlError(err, r.caller, r.sql, bindNames(r.bindVars))
}

// interrupted is the error of a statement killed because its context ended, in the
// errno/sqlstate form vtgate passes on to its MySQL clients.
func interrupted(ctx context.Context, r *request) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return rpcerr.New(vtrpcpb.Code_DEADLINE_EXCEEDED,
			"Query execution was interrupted, maximum statement execution time exceeded (errno 3024) (sqlstate HY000) (CallerID: %s): Sql: %q", r.caller, truncateSQL(r.sql))
	}
	return rpcerr.New(vtrpcpb.Code_CANCELED,
		"Query execution was interrupted (errno 1317) (sqlstate 70100) (CallerID: %s): Sql: %q", r.caller, truncateSQL(r.sql))
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
func (e *engine) executeNoTx(ctx context.Context, r *request) (*querypb.QueryResult, error) {
	switch class(r.plan.Type) {
	case classRead:
		return e.onPool(ctx, e.conns, r, e.cfg.MaxResultSize, false)
	case classWrite:
		// Autocommit writes take a transaction-pool connection, so the transaction cap bounds
		// write concurrency as in vttablet.
		return e.onPool(ctx, e.tx.poolFor(r.options), r, 0, false)
	default:
		// Statements that change session state (SET, LOCK TABLES, temporary tables, …) run on
		// a connection that is thrown away afterwards, so no pooled connection ever carries them.
		return e.onPool(ctx, e.tx.poolFor(r.options), r, e.cfg.MaxResultSize, true)
	}
}

func (e *engine) onPool(ctx context.Context, p *dbPool, r *request, maxRows int, discard bool) (*querypb.QueryResult, error) {
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
