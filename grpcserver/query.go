package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// QueryService is the part of tabletd's query service the gRPC API exposes
// (*tabletserver.Server implements it).
type QueryService interface {
	StreamHealth(ctx context.Context, send func(*querypb.StreamHealthResponse) error) error
	Alias() *topodatapb.TabletAlias
	Execute(ctx context.Context, c *tabletserver.Call) (*querypb.QueryResult, error)
	StreamExecute(ctx context.Context, c *tabletserver.Call, send func(*querypb.QueryResult) error) error
	Begin(ctx context.Context, c *tabletserver.Call) (int64, error)
	Commit(ctx context.Context, c *tabletserver.Call) (int64, error)
	Rollback(ctx context.Context, c *tabletserver.Call) (int64, error)
	BeginExecute(ctx context.Context, c *tabletserver.Call) tabletserver.Outcome
	BeginStreamExecute(ctx context.Context, c *tabletserver.Call, send func(*querypb.QueryResult) error) tabletserver.Outcome
	ReserveExecute(ctx context.Context, c *tabletserver.Call) tabletserver.Outcome
	ReserveStreamExecute(ctx context.Context, c *tabletserver.Call, send func(*querypb.QueryResult) error) tabletserver.Outcome
	ReserveBeginExecute(ctx context.Context, c *tabletserver.Call) tabletserver.Outcome
	ReserveBeginStreamExecute(ctx context.Context, c *tabletserver.Call, send func(*querypb.QueryResult) error) tabletserver.Outcome
	Release(ctx context.Context, c *tabletserver.Call) error
	GetSchema(ctx context.Context, target *querypb.Target, kind querypb.SchemaTableType, names []string, send func(*querypb.GetSchemaResponse) error) error
}

// queryServer adapts QueryService to queryservice.Query. Methods tabletd does not implement
// yet answer UNIMPLEMENTED through the embedded type.
type queryServer struct {
	queryservicepb.UnimplementedQueryServer
	qs QueryService
}

// NewQueryServer returns the queryservice.Query implementation for qs.
func NewQueryServer(qs QueryService) queryservicepb.QueryServer { return &queryServer{qs: qs} }

func (s *queryServer) StreamHealth(_ *querypb.StreamHealthRequest, stream queryservicepb.Query_StreamHealthServer) error {
	return s.qs.StreamHealth(stream.Context(), stream.Send)
}

func caller(id *querypb.VTGateCallerID) string { return id.GetUsername() }

func (s *queryServer) Execute(ctx context.Context, r *querypb.ExecuteRequest) (*querypb.ExecuteResponse, error) {
	res, err := s.qs.Execute(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(),
		SQL: r.Query.GetSql(), BindVars: r.Query.GetBindVariables(), TxID: r.TransactionId, ReservedID: r.ReservedId, Options: r.Options})
	if err != nil {
		return nil, err
	}
	return &querypb.ExecuteResponse{Result: res}, nil
}

func (s *queryServer) StreamExecute(r *querypb.StreamExecuteRequest, stream queryservicepb.Query_StreamExecuteServer) error {
	return s.qs.StreamExecute(stream.Context(), &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(),
		SQL: r.Query.GetSql(), BindVars: r.Query.GetBindVariables(), TxID: r.TransactionId, ReservedID: r.ReservedId, Options: r.Options},
		func(qr *querypb.QueryResult) error { return stream.Send(&querypb.StreamExecuteResponse{Result: qr}) })
}

func (s *queryServer) Begin(ctx context.Context, r *querypb.BeginRequest) (*querypb.BeginResponse, error) {
	id, err := s.qs.Begin(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), Options: r.Options})
	if err != nil {
		return nil, err
	}
	return &querypb.BeginResponse{TransactionId: id, TabletAlias: s.qs.Alias()}, nil
}

func (s *queryServer) Commit(ctx context.Context, r *querypb.CommitRequest) (*querypb.CommitResponse, error) {
	id, err := s.qs.Commit(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), TxID: r.TransactionId})
	if err != nil {
		return nil, err
	}
	return &querypb.CommitResponse{ReservedId: id}, nil
}

func (s *queryServer) Rollback(ctx context.Context, r *querypb.RollbackRequest) (*querypb.RollbackResponse, error) {
	id, err := s.qs.Rollback(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), TxID: r.TransactionId})
	if err != nil {
		return nil, err
	}
	return &querypb.RollbackResponse{ReservedId: id}, nil
}

// inBand applies vttablet's contract for Begin*/Reserve* responses: when nothing was created
// the error is the RPC's status; when a transaction or reserved connection exists, the
// error travels inside the response with the IDs, so vtgate can release them.
func statusErr(o tabletserver.Outcome) error {
	if o.Err != nil && o.TxID == 0 && o.ReservedID == 0 {
		return o.Err
	}
	return nil
}

func (s *queryServer) BeginExecute(ctx context.Context, r *querypb.BeginExecuteRequest) (*querypb.BeginExecuteResponse, error) {
	o := s.qs.BeginExecute(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), ReservedID: r.ReservedId, Options: r.Options, PreQueries: r.PreQueries})
	if err := statusErr(o); err != nil {
		return nil, err
	}
	return &querypb.BeginExecuteResponse{Error: rpcerr.ToRPCError(o.Err), Result: o.Result, TransactionId: o.TxID, TabletAlias: s.qs.Alias()}, nil
}

func (s *queryServer) BeginStreamExecute(r *querypb.BeginStreamExecuteRequest, stream queryservicepb.Query_BeginStreamExecuteServer) error {
	o := s.qs.BeginStreamExecute(stream.Context(), &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), ReservedID: r.ReservedId, Options: r.Options, PreQueries: r.PreQueries},
		func(qr *querypb.QueryResult) error {
			return stream.Send(&querypb.BeginStreamExecuteResponse{Result: qr})
		})
	if err := statusErr(o); err != nil {
		return err
	}
	// The last message carries the IDs (and the error, in-band).
	return stream.Send(&querypb.BeginStreamExecuteResponse{Error: rpcerr.ToRPCError(o.Err), TransactionId: o.TxID, TabletAlias: s.qs.Alias()})
}

func (s *queryServer) ReserveExecute(ctx context.Context, r *querypb.ReserveExecuteRequest) (*querypb.ReserveExecuteResponse, error) {
	o := s.qs.ReserveExecute(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), TxID: r.TransactionId, Options: r.Options, PreQueries: r.PreQueries})
	if err := statusErr(o); err != nil {
		return nil, err
	}
	return &querypb.ReserveExecuteResponse{Error: rpcerr.ToRPCError(o.Err), Result: o.Result, ReservedId: o.ReservedID, TabletAlias: s.qs.Alias()}, nil
}

func (s *queryServer) ReserveStreamExecute(r *querypb.ReserveStreamExecuteRequest, stream queryservicepb.Query_ReserveStreamExecuteServer) error {
	o := s.qs.ReserveStreamExecute(stream.Context(), &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), TxID: r.TransactionId, Options: r.Options, PreQueries: r.PreQueries},
		func(qr *querypb.QueryResult) error {
			return stream.Send(&querypb.ReserveStreamExecuteResponse{Result: qr})
		})
	if err := statusErr(o); err != nil {
		return err
	}
	return stream.Send(&querypb.ReserveStreamExecuteResponse{Error: rpcerr.ToRPCError(o.Err), ReservedId: o.ReservedID, TabletAlias: s.qs.Alias()})
}

func (s *queryServer) ReserveBeginExecute(ctx context.Context, r *querypb.ReserveBeginExecuteRequest) (*querypb.ReserveBeginExecuteResponse, error) {
	o := s.qs.ReserveBeginExecute(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), Options: r.Options, PreQueries: r.PreQueries, PostBeginQueries: r.PostBeginQueries})
	if err := statusErr(o); err != nil {
		return nil, err
	}
	return &querypb.ReserveBeginExecuteResponse{Error: rpcerr.ToRPCError(o.Err), Result: o.Result, TransactionId: o.TxID,
		ReservedId: o.ReservedID, TabletAlias: s.qs.Alias()}, nil
}

func (s *queryServer) ReserveBeginStreamExecute(r *querypb.ReserveBeginStreamExecuteRequest, stream queryservicepb.Query_ReserveBeginStreamExecuteServer) error {
	o := s.qs.ReserveBeginStreamExecute(stream.Context(), &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), SQL: r.Query.GetSql(),
		BindVars: r.Query.GetBindVariables(), Options: r.Options, PreQueries: r.PreQueries, PostBeginQueries: r.PostBeginQueries},
		func(qr *querypb.QueryResult) error {
			return stream.Send(&querypb.ReserveBeginStreamExecuteResponse{Result: qr})
		})
	if err := statusErr(o); err != nil {
		return err
	}
	return stream.Send(&querypb.ReserveBeginStreamExecuteResponse{Error: rpcerr.ToRPCError(o.Err), TransactionId: o.TxID,
		ReservedId: o.ReservedID, TabletAlias: s.qs.Alias()})
}

func (s *queryServer) Release(ctx context.Context, r *querypb.ReleaseRequest) (*querypb.ReleaseResponse, error) {
	if err := s.qs.Release(ctx, &tabletserver.Call{Target: r.Target, Caller: caller(r.ImmediateCallerId), CallerGroups: r.ImmediateCallerId.GetGroups(), TxID: r.TransactionId, ReservedID: r.ReservedId}); err != nil {
		return nil, err
	}
	return &querypb.ReleaseResponse{}, nil
}

func (s *queryServer) GetSchema(r *querypb.GetSchemaRequest, stream queryservicepb.Query_GetSchemaServer) error {
	return s.qs.GetSchema(stream.Context(), r.Target, r.TableType, r.TableNames, stream.Send)
}
