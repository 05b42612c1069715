package tablet

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/querylog"
)

// queryLogOptions opens the query log (--log-queries-to-file) and returns the gRPC
// interceptors that record every queryservice call carrying a query; none without a file.
func (t *Tablet) queryLogOptions() ([]grpc.ServerOption, error) {
	if t.cfg.QueryLog.Path == "" {
		return nil, nil
	}
	ql, err := querylog.New(t.cfg.QueryLog)
	if err != nil {
		return nil, err
	}
	t.onClose("query log", func(context.Context) { _ = ql.Close() })
	r := queryRecorder{log: ql, zlog: t.log, now: t.now}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(r.unary), grpc.ChainStreamInterceptor(r.stream)}, nil
}

// queryRecorder turns queryservice calls into query log entries.
type queryRecorder struct {
	log  *querylog.Logger
	zlog *zap.Logger
	now  func() time.Time
}

const queryServicePrefix = "/queryservice.Query/"

// queryRequest is what every queryservice request carrying a statement has.
type queryRequest interface {
	GetQuery() *querypb.BoundQuery
	GetEffectiveCallerId() *vtrpcpb.CallerID
	GetImmediateCallerId() *querypb.VTGateCallerID
}

type withResult interface{ GetResult() *querypb.QueryResult }
type withInBandError interface{ GetError() *vtrpcpb.RPCError }
type withTransaction interface{ GetTransactionId() int64 }

func (r queryRecorder) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	q, ok := req.(queryRequest)
	if !ok || !strings.HasPrefix(info.FullMethod, queryServicePrefix) {
		return h(ctx, req)
	}
	e := r.entry(ctx, info.FullMethod, q, req)
	resp, err := h(ctx, req)
	if res, ok := resp.(withResult); ok && res.GetResult() != nil {
		e.RowsAffected, e.RowsReturned = res.GetResult().GetRowsAffected(), uint64(len(res.GetResult().GetRows()))
	}
	r.finish(&e, resp, err)
	return resp, err
}

func (r queryRecorder) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, queryServicePrefix) {
		return h(srv, ss)
	}
	rs := &recordingStream{ServerStream: ss, now: r.now}
	err := h(srv, rs)
	if rs.req == nil {
		return err // not a call carrying a statement (StreamHealth, VStream, …)
	}
	e := r.entry(ss.Context(), info.FullMethod, rs.req, rs.req)
	e.Start = rs.start
	e.RowsAffected, e.RowsReturned = rs.affected, rs.rows
	r.finish(&e, rs.last, err)
	return err
}

func (r queryRecorder) entry(ctx context.Context, method string, q queryRequest, req any) querylog.Entry {
	e := querylog.Entry{Method: strings.TrimPrefix(method, queryServicePrefix), Start: r.now(),
		SQL: q.GetQuery().GetSql(), BindVars: q.GetQuery().GetBindVariables(),
		Username: q.GetImmediateCallerId().GetUsername(), EffectiveCaller: q.GetEffectiveCallerId().GetPrincipal()}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		e.RemoteAddr = p.Addr.String()
	}
	if tx, ok := req.(withTransaction); ok {
		e.TransactionID = tx.GetTransactionId()
	}
	return e
}

// finish stamps the end, takes the transaction a Begin* call opened and its in-band error,
// and writes the entry. A failed write is logged, never returned: the query was answered.
func (r queryRecorder) finish(e *querylog.Entry, resp any, err error) {
	e.End, e.Err = r.now(), err
	if tx, ok := resp.(withTransaction); ok && tx.GetTransactionId() != 0 {
		e.TransactionID = tx.GetTransactionId()
	}
	if ib, ok := resp.(withInBandError); ok && ib.GetError() != nil && e.Err == nil {
		e.Err = errors.New(ib.GetError().GetMessage())
	}
	if werr := r.log.Record(*e); werr != nil {
		r.zlog.Warn("writing the query log", zap.Error(werr))
	}
}

// recordingStream keeps a streaming call's request and counts the rows it sends back.
type recordingStream struct {
	grpc.ServerStream
	now      func() time.Time
	req      queryRequest
	start    time.Time
	last     any // the last message sent: Begin*/Reserve* streams carry their IDs there
	rows     uint64
	affected uint64
}

func (s *recordingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if q, ok := m.(queryRequest); ok && err == nil && s.req == nil {
		s.req, s.start = q, s.now()
	}
	return err
}

func (s *recordingStream) SendMsg(m any) error {
	if res, ok := m.(withResult); ok && res.GetResult() != nil {
		s.rows += uint64(len(res.GetResult().GetRows()))
		s.affected += res.GetResult().GetRowsAffected()
	}
	if _, ok := m.(withTransaction); ok {
		s.last = m
	}
	return s.ServerStream.SendMsg(m)
}
