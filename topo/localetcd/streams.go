package localetcd

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamCloser ends open client streams (watches, lease keep-alives) when
// the server closes. etcd's Close stops gRPC gracefully, which waits for
// every stream to finish, and a watch never finishes by itself: without
// this, Close takes etcd's full request timeout (over 5s) whenever a client
// is watching.
type streamCloser struct {
	ctx    context.Context // canceled when the server starts closing
	cancel context.CancelFunc
}

func newStreamCloser() *streamCloser {
	ctx, cancel := context.WithCancel(context.Background())
	return &streamCloser{ctx: ctx, cancel: cancel}
}

// interceptor gives each stream a context that is also canceled on close.
// A stream ended that way reports codes.Unavailable, like a server that went
// away, so clients reconnect and retry rather than treat it as canceled.
func (c *streamCloser) interceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	err := handler(srv, serverStream{ServerStream: ss, ctx: ctx})
	if c.ctx.Err() != nil && ss.Context().Err() == nil {
		return status.Error(codes.Unavailable, "etcd server is shutting down")
	}
	return err
}

// serverStream is a grpc.ServerStream with a replaced context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s serverStream) Context() context.Context { return s.ctx }
