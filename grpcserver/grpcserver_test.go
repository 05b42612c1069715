package grpcserver

import (
	"bytes"
	"context"
	"google.golang.org/protobuf/proto"
	"net"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseServiceMap(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		serve   []string
		skipped int
		bad     bool
	}{
		{nil, []string{QueryServiceName, TabletManagerName}, 0, false},
		{[]string{"grpc-queryservice"}, []string{QueryServiceName}, 0, false},
		{[]string{"grpc-queryservice", "grpc-tabletmanager", "grpc-updatestream"}, []string{QueryServiceName, TabletManagerName}, 1, false},
		{[]string{"grpc-nosuch"}, nil, 0, true},
		{[]string{"bsonrpc-queryservice"}, nil, 0, true},
	} {
		serve, skipped, err := ParseServiceMap(tc.in)
		if (err != nil) != tc.bad {
			t.Fatalf("%v: err %v", tc.in, err)
		}
		if tc.bad {
			continue
		}
		if len(serve) != len(tc.serve) || len(skipped) != tc.skipped {
			t.Fatalf("%v: serve %v skipped %v", tc.in, serve, skipped)
		}
		for _, s := range tc.serve {
			if !serve[s] {
				t.Fatalf("%v: %s not served", tc.in, s)
			}
		}
	}
}

// fakeTM panics or fails on demand; it isolates the edge's conversions. The RPCs it does
// not override are nil interface methods the test never calls.
type fakeTM struct {
	SchemaRPCs
	ReplicationRPCs
	BackupRPCs
	VReplicationRPCs
	VDiffRPCs
}

func (fakeTM) Ping(p string) string { panic("boom: " + p) }
func (fakeTM) ChangeType(context.Context, topodatapb.TabletType, bool) error {
	return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.NotServing)
}
func (fakeTM) RefreshState(context.Context) error      { return nil }
func (fakeTM) RunHealthCheck()                         {}
func (fakeTM) SetReadOnly(context.Context, bool) error { return nil }
func (fakeQS) StreamHealth(context.Context, func(*querypb.StreamHealthResponse) error) error {
	panic("stream boom")
}

func (fakeQS) Execute(context.Context, *tabletserver.Call) (*querypb.QueryResult, error) {
	return nil, rpcerr.New(vtrpcpb.Code_ALREADY_EXISTS, "Duplicate entry (errno 1062) (sqlstate 23000)")
}

// fakeQS implements what the test calls; the embedded nil interface stands for the rest.
type fakeQS struct{ QueryService }

func TestEdgeConvertsErrorsAndPanics(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions(zap.NewNop(), nil, DefaultTuning())...)
	queryservicepb.RegisterQueryServer(srv, NewQueryServer(fakeQS{}))
	tabletmanagerservicepb.RegisterTabletManagerServer(srv, NewTabletManagerServer(fakeTM{}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tm := tabletmanagerservicepb.NewTabletManagerClient(conn)
	ctx := context.Background()

	_, err = tm.Ping(ctx, &tabletmanagerdatapb.PingRequest{Payload: "x"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic → %v, want INTERNAL", err)
	}
	_, err = tm.ChangeType(ctx, &tabletmanagerdatapb.ChangeTypeRequest{TabletType: topodatapb.TabletType_PRIMARY})
	if int32(status.Code(err)) != int32(vtrpcpb.Code_CLUSTER_EVENT) || status.Convert(err).Message() != rpcerr.NotServing {
		t.Fatalf("coded error → %v, want CLUSTER_EVENT %q", err, rpcerr.NotServing)
	}
	_, err = tm.ExecuteHook(ctx, &tabletmanagerdatapb.ExecuteHookRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unimplemented RPC → %v", err)
	}
	qs := queryservicepb.NewQueryClient(conn)
	st, err := qs.StreamHealth(ctx, &querypb.StreamHealthRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic → %v, want INTERNAL", err)
	}
	_, err = qs.Execute(ctx, &querypb.ExecuteRequest{})
	if int32(status.Code(err)) != int32(vtrpcpb.Code_ALREADY_EXISTS) {
		t.Fatalf("Execute → %v, want ALREADY_EXISTS", err)
	}
	if _, err = qs.Prepare(ctx, &querypb.PrepareRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("Prepare (2PC) → %v, want UNIMPLEMENTED", err)
	}
}

// TestCodecMatchesProto: the vtproto codec writes the standard encoding and reads it back.
func TestCodecMatchesProto(t *testing.T) {
	c := newCodec()
	big := make([]byte, 64*1024) // above gRPC's buffer-pooling threshold
	for _, m := range []proto.Message{
		&querypb.ExecuteResponse{Result: &querypb.QueryResult{RowsAffected: 3, InsertId: 9,
			Fields: []*querypb.Field{{Name: "id", Type: querypb.Type_INT64}},
			Rows:   []*querypb.Row{{Lengths: []int64{1, -1, 2}, Values: []byte("1ab")}}}},
		&querypb.ExecuteResponse{Result: &querypb.QueryResult{Rows: []*querypb.Row{{Lengths: []int64{int64(len(big))}, Values: big}}}},
	} {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("codec bytes differ from proto.Marshal for %T", m)
		}
		back := &querypb.ExecuteResponse{}
		if err := c.Unmarshal(data, back); err != nil || !proto.Equal(back, m) {
			t.Fatalf("round trip: %v", err)
		}
		data.Free()
	}
}
