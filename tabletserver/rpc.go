package tabletserver

import (
	"context"

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
	return s.exec.execute(ctx, c, id, s.adm.Load().tabletType)
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
	return s.exec.streamExecute(ctx, c, id, send)
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
		if st, err = s.exec.tx.get(c.ReservedID, "begin"); err != nil {
			return Outcome{Err: err}
		}
	} else if st, err = s.exec.tx.create(ctx, c.Options, "begin"); err != nil {
		return Outcome{Err: err}
	}
	if err := s.exec.tx.begin(ctx, st, c.Options, s.readOnlyTablet()); err != nil {
		if c.ReservedID == 0 {
			s.exec.tx.end(st, "begin failed", true)
			return Outcome{Err: err}
		}
		s.exec.tx.put(st)
		return Outcome{ReservedID: c.ReservedID, Err: err}
	}
	out := Outcome{TxID: st.id}
	if c.ReservedID != 0 {
		out.ReservedID = st.id
	}
	out.Result, out.Err = s.exec.runInConn(ctx, st, c, c.PreQueries, withQuery, send)
	s.exec.tx.put(st)
	return out
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
	return s.exec.tx.finish(ctx, c.TxID, commit)
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
		if st, err = s.exec.tx.get(c.TxID, "reserve"); err != nil {
			return Outcome{Err: err}
		}
	} else if st, err = s.exec.tx.create(ctx, c.Options, "reserve"); err != nil {
		return Outcome{Err: err}
	}
	st.reserved = true
	out := Outcome{ReservedID: st.id}
	if st.inTx {
		out.TxID = st.id
	}
	setupCtx, cancel := s.exec.queryContext(ctx, c.Options)
	for _, q := range c.PreQueries {
		if _, err := s.exec.tx.exec(setupCtx, st, q, 0); err != nil {
			cancel()
			s.exec.tx.put(st)
			out.Err = err
			return out
		}
	}
	cancel()
	if begin {
		if err := s.exec.tx.begin(ctx, st, c.Options, s.readOnlyTablet()); err != nil {
			s.exec.tx.put(st)
			out.Err = err
			return out
		}
		out.TxID = st.id
	}
	out.Result, out.Err = s.exec.runInConn(ctx, st, c, c.PostBeginQueries, true, send)
	s.exec.tx.put(st)
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
	return s.exec.tx.release(ctx, id)
}
