package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
)

// VStreamService is the source side of VReplication (*vstreamer.Engine implements it).
type VStreamService interface {
	Stream(ctx context.Context, req *binlogdatapb.VStreamRequest, send func([]*binlogdatapb.VEvent) error) error
	StreamRows(ctx context.Context, req *binlogdatapb.VStreamRowsRequest, send func(*binlogdatapb.VStreamRowsResponse) error) error
	StreamTables(ctx context.Context, req *binlogdatapb.VStreamTablesRequest, send func(*binlogdatapb.VStreamTablesResponse) error) error
	StreamResults(ctx context.Context, req *binlogdatapb.VStreamResultsRequest, send func(*binlogdatapb.VStreamResultsResponse) error) error
}

// vstreamServer adds the VStream family to a queryservice.Query implementation.
type vstreamServer struct {
	queryservicepb.QueryServer
	vs VStreamService
}

// WithVStream returns qs serving VStream, VStreamRows, VStreamTables and VStreamResults
// from vs; a nil vs leaves them UNIMPLEMENTED.
func WithVStream(qs queryservicepb.QueryServer, vs VStreamService) queryservicepb.QueryServer {
	if vs == nil {
		return qs
	}
	return &vstreamServer{QueryServer: qs, vs: vs}
}

func (s *vstreamServer) VStream(r *binlogdatapb.VStreamRequest, stream queryservicepb.Query_VStreamServer) error {
	return s.vs.Stream(stream.Context(), r, func(evs []*binlogdatapb.VEvent) error {
		return stream.Send(&binlogdatapb.VStreamResponse{Events: evs})
	})
}

func (s *vstreamServer) VStreamRows(r *binlogdatapb.VStreamRowsRequest, stream queryservicepb.Query_VStreamRowsServer) error {
	return s.vs.StreamRows(stream.Context(), r, stream.Send)
}

func (s *vstreamServer) VStreamTables(r *binlogdatapb.VStreamTablesRequest, stream queryservicepb.Query_VStreamTablesServer) error {
	return s.vs.StreamTables(stream.Context(), r, stream.Send)
}

func (s *vstreamServer) VStreamResults(r *binlogdatapb.VStreamResultsRequest, stream queryservicepb.Query_VStreamResultsServer) error {
	return s.vs.StreamResults(stream.Context(), r, stream.Send)
}
