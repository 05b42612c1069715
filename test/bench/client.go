package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the fallback codec below
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

const (
	pointSQL  = "select c from sbtest1 where id = :id"
	directSQL = "select c from sbtest1 where id = ?"
	streamSQL = "select * from sbtest2"
	// callerName is the ImmediateCallerId vtgate would send (the MySQL user).
	callerName = "bench"
	// maxRecvMsg bounds one gRPC message from a tablet, as vtgate's default.
	maxRecvMsg = 16 << 20
)

// target is one of the systems under test.
type target interface {
	// query runs the point select for id and checks one row came back.
	query(ctx context.Context, id int64) error
	// stream runs the full-table scan and returns the number of rows.
	stream(ctx context.Context) (int64, error)
}

// tabletTarget speaks queryservice gRPC to a tablet, as vtgate does: one
// connection per tablet shared by every client, vtprotobuf (un)marshalling.
type tabletTarget struct {
	conn   *grpc.ClientConn
	client queryservicepb.QueryClient
	target *querypb.Target
	opts   *querypb.ExecuteOptions // for Execute
}

func dialTablet(addr, keyspace string, tabletType topodatapb.TabletType, fields querypb.ExecuteOptions_IncludedFields) (*tabletTarget, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(vtprotoCodec{fallback: encoding.GetCodecV2("proto")}),
			grpc.MaxCallRecvMsgSize(maxRecvMsg)))
	if err != nil {
		return nil, err
	}
	return &tabletTarget{
		conn:   conn,
		client: queryservicepb.NewQueryClient(conn),
		target: &querypb.Target{Keyspace: keyspace, Shard: "0", TabletType: tabletType},
		// What vtgate's MySQL front end puts in every session.
		opts: &querypb.ExecuteOptions{IncludedFields: fields, Workload: querypb.ExecuteOptions_OLTP},
	}, nil
}

func (t *tabletTarget) close() { _ = t.conn.Close() }

func callers() (*vtrpcpb.CallerID, *querypb.VTGateCallerID) {
	return &vtrpcpb.CallerID{Principal: callerName}, &querypb.VTGateCallerID{Username: callerName}
}

func (t *tabletTarget) query(ctx context.Context, id int64) error {
	eff, imm := callers()
	resp, err := t.client.Execute(ctx, &querypb.ExecuteRequest{
		EffectiveCallerId: eff,
		ImmediateCallerId: imm,
		Target:            t.target,
		Query: &querypb.BoundQuery{
			Sql: pointSQL,
			BindVariables: map[string]*querypb.BindVariable{
				"id": {Type: querypb.Type_INT64, Value: strconv.AppendInt(nil, id, 10)},
			},
		},
		Options: t.opts,
	})
	if err != nil {
		return err
	}
	if n := len(resp.GetResult().GetRows()); n != 1 {
		return fmt.Errorf("id %d: %d rows, want 1", id, n)
	}
	return nil
}

// selectOne is the readiness probe: `select 1` through Execute.
func (t *tabletTarget) selectOne(ctx context.Context) error {
	eff, imm := callers()
	resp, err := t.client.Execute(ctx, &querypb.ExecuteRequest{
		EffectiveCallerId: eff, ImmediateCallerId: imm, Target: t.target,
		Query: &querypb.BoundQuery{Sql: "select 1"}, Options: t.opts,
	})
	if err != nil {
		return err
	}
	if rows := resp.GetResult().GetRows(); len(rows) != 1 || string(rows[0].GetValues()) != "1" {
		return fmt.Errorf("select 1 returned %v", resp.GetResult())
	}
	return nil
}

func (t *tabletTarget) stream(ctx context.Context) (int64, error) {
	eff, imm := callers()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := t.client.StreamExecute(ctx, &querypb.StreamExecuteRequest{
		EffectiveCallerId: eff, ImmediateCallerId: imm, Target: t.target,
		Query:   &querypb.BoundQuery{Sql: streamSQL},
		Options: &querypb.ExecuteOptions{IncludedFields: querypb.ExecuteOptions_TYPE_AND_NAME, Workload: querypb.ExecuteOptions_OLAP},
	})
	if err != nil {
		return 0, err
	}
	var rows int64
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows += int64(len(resp.GetResult().GetRows()))
	}
}

// isUnimplemented reports a query service that is not there yet.
func isUnimplemented(err error) bool { return status.Code(err) == codes.Unimplemented }

// directTarget is MariaDB over the MySQL protocol, one *sql.DB per point.
type directTarget struct{ db *sql.DB }

func (d directTarget) query(ctx context.Context, id int64) error {
	var c []byte
	return d.db.QueryRowContext(ctx, directSQL, id).Scan(&c)
}

func (d directTarget) stream(ctx context.Context) (int64, error) {
	rows, err := d.db.QueryContext(ctx, streamSQL)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var id, k int64
	var c, pad sql.RawBytes
	var n int64
	for rows.Next() {
		if err := rows.Scan(&id, &k, &c, &pad); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// vtprotoCodec is Vitess's gRPC codec (go/vt/servenv/grpc_codec.go): the
// generated MarshalVT/UnmarshalVT instead of reflection, so the client costs
// what vtgate's does.
type vtprotoCodec struct{ fallback encoding.CodecV2 }

type vtprotoMessage interface {
	MarshalToSizedBufferVT(data []byte) (int, error)
	UnmarshalVT([]byte) error
	SizeVT() int
}

func (vtprotoCodec) Name() string { return "proto" }

func (c vtprotoCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtprotoMessage)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.SizeVT()
	buf := make([]byte, size)
	if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
}

func (c vtprotoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtprotoMessage)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	pool := mem.DefaultBufferPool()
	buf := data.MaterializeToBuffer(pool)
	defer buf.Free()
	return m.UnmarshalVT(buf.ReadOnlyData())
}
