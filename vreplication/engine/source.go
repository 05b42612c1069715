package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Source is a source tablet's streaming API, as a target uses it. The source may be a tabletd
// or a Vitess vttablet: only the queryservice wire protocol is assumed.
type Source interface {
	// VStream streams binlog events from pos through filter until ctx ends, send fails or the
	// source ends the stream.
	VStream(ctx context.Context, pos string, filter *binlogdatapb.Filter, send func([]*binlogdatapb.VEvent) error) error
	// VStreamRows streams the rows of query (a filter SELECT) after lastpk from one
	// consistent snapshot; the first response carries the fields and the snapshot's GTID.
	VStreamRows(ctx context.Context, query string, lastpk *querypb.QueryResult, send func(*binlogdatapb.VStreamRowsResponse) error) error
	Close() error
}

// Dialer connects to source tablets.
type Dialer interface {
	// Dial opens tablet's streaming API.
	Dial(ctx context.Context, tablet *topodatapb.Tablet) (Source, error)
	// Healthy returns nil when tablet's StreamHealth says it serves without a health error.
	Healthy(ctx context.Context, tablet *topodatapb.Tablet) error
}

// GRPCDialer dials tablets over Vitess's queryservice gRPC API, unencrypted (as vttablet
// does by default).
type GRPCDialer struct {
	// MaxMessageSize bounds received messages (vttablet's --grpc-max-message-size).
	MaxMessageSize int
}

// tabletAddr is host:grpc-port of a tablet record.
func tabletAddr(t *topodatapb.Tablet) (string, error) {
	port, ok := t.GetPortMap()["grpc"]
	if t.GetHostname() == "" || !ok || port <= 0 {
		return "", rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tablet %s has no gRPC address in the topology", aliasString(t.GetAlias()))
	}
	return net.JoinHostPort(t.Hostname, strconv.Itoa(int(port))), nil
}

func (d GRPCDialer) conn(t *topodatapb.Tablet) (*grpc.ClientConn, error) {
	addr, err := tabletAddr(t)
	if err != nil {
		return nil, err
	}
	size := d.MaxMessageSize
	if size <= 0 {
		size = 16 << 20
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size), grpc.MaxCallSendMsgSize(size)))
}

// Dial implements Dialer.
func (d GRPCDialer) Dial(_ context.Context, t *topodatapb.Tablet) (Source, error) {
	cc, err := d.conn(t)
	if err != nil {
		return nil, err
	}
	target := &querypb.Target{Keyspace: t.Keyspace, Shard: t.Shard, TabletType: t.Type, Cell: t.GetAlias().GetCell()}
	return &grpcSource{cc: cc, qs: queryservicepb.NewQueryClient(cc), target: target}, nil
}

// Healthy implements Dialer: the first StreamHealth record must say serving, with no health
// error (the condition of vttablet's tablet picker).
func (d GRPCDialer) Healthy(ctx context.Context, t *topodatapb.Tablet) error {
	cc, err := d.conn(t)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := queryservicepb.NewQueryClient(cc).StreamHealth(ctx, &querypb.StreamHealthRequest{})
	if err != nil {
		return err
	}
	r, err := st.Recv()
	if err != nil {
		return err
	}
	switch {
	case r.GetRealtimeStats().GetHealthError() != "":
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tablet %s is unhealthy: %s", aliasString(t.Alias), r.RealtimeStats.HealthError)
	case !r.GetServing():
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tablet %s is not serving", aliasString(t.Alias))
	}
	return nil
}

type grpcSource struct {
	cc     *grpc.ClientConn
	qs     queryservicepb.QueryClient
	target *querypb.Target
}

func (s *grpcSource) VStream(ctx context.Context, pos string, filter *binlogdatapb.Filter, send func([]*binlogdatapb.VEvent) error) error {
	st, err := s.qs.VStream(ctx, &binlogdatapb.VStreamRequest{Target: s.target, Position: pos, Filter: filter})
	if err != nil {
		return err
	}
	for {
		r, err := st.Recv()
		if err != nil {
			return streamEnd(ctx, err)
		}
		if err := send(r.Events); err != nil {
			return err
		}
	}
}

func (s *grpcSource) VStreamRows(ctx context.Context, query string, lastpk *querypb.QueryResult, send func(*binlogdatapb.VStreamRowsResponse) error) error {
	st, err := s.qs.VStreamRows(ctx, &binlogdatapb.VStreamRowsRequest{Target: s.target, Query: query, Lastpk: lastpk})
	if err != nil {
		return err
	}
	for {
		r, err := st.Recv()
		if err != nil {
			return streamEnd(ctx, err)
		}
		if err := send(r); err != nil {
			return err
		}
	}
}

func (s *grpcSource) Close() error { return s.cc.Close() }

// streamEnd turns the end of a server stream into nil (EOF) or the error, the context's own
// error taking precedence over the CANCELED status it causes.
func streamEnd(ctx context.Context, err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func aliasString(a *topodatapb.TabletAlias) string {
	return fmt.Sprintf("%s-%010d", a.GetCell(), a.GetUid())
}
