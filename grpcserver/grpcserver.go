// Package grpcserver serves Vitess's queryservice and tabletmanagerservice gRPC APIs on top of tabletd's query service and tablet manager; errors and panics are converted here, at the edge.
package grpcserver

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Service names as they appear in --service-map (with the "grpc-" prefix).
const (
	QueryServiceName  = "queryservice"
	TabletManagerName = "tabletmanager"
)

// knownServices are the --service-map entries vttablet accepts; those tabletd does not
// serve yet are accepted (so existing command lines work) and reported at start.
var knownServices = map[string]bool{
	QueryServiceName: true, TabletManagerName: true, "updatestream": false, "throttler": false,
}

// ParseServiceMap turns --service-map's comma-separated "grpc-<name>" entries into the set of
// services to serve. Empty means both of tabletd's services. Unknown names are an error;
// known ones tabletd does not provide are returned in skipped.
func ParseServiceMap(list []string) (serve map[string]bool, skipped []string, err error) {
	serve = map[string]bool{}
	if len(list) == 0 {
		serve[QueryServiceName], serve[TabletManagerName] = true, true
		return serve, nil, nil
	}
	for _, raw := range list {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		name, ok := strings.CutPrefix(e, "grpc-")
		if !ok {
			// vttablet also knows non-gRPC entries (e.g. bsonrpc-*); none apply any more.
			return nil, nil, fmt.Errorf("--service-map entry %q is not a grpc-<service> name (known: grpc-queryservice, grpc-tabletmanager, grpc-updatestream, grpc-throttler)", e)
		}
		provided, known := knownServices[name]
		switch {
		case !known:
			return nil, nil, fmt.Errorf("--service-map entry %q names an unknown service (known: grpc-queryservice, grpc-tabletmanager, grpc-updatestream, grpc-throttler)", e)
		case provided:
			serve[name] = true
		default:
			skipped = append(skipped, e)
		}
	}
	sort.Strings(skipped)
	return serve, skipped, nil
}

// ServerOptions returns what every tabletd gRPC server uses: the vtproto codec, and
// interceptors by which a panic in a handler becomes INTERNAL (stack logged) and every error
// leaves as a gRPC status whose code is the vtrpc code. observe (may be nil) sees unary calls
// with tabletd's own errors, before their conversion. tuning sets the transport (Validate it
// first).
func ServerOptions(log *zap.Logger, observe grpc.UnaryServerInterceptor, tuning Tuning) []grpc.ServerOption {
	unary := []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer recoverTo(log, info.FullMethod, &err)
		resp, err = h(ctx, req)
		return resp, rpcerr.ToGRPC(err)
	}}
	if observe != nil {
		unary = append(unary, observe)
	}
	return append(tuning.options(),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer recoverTo(log, info.FullMethod, &err)
			return rpcerr.ToGRPC(h(srv, ss))
		}),
	)
}

func recoverTo(log *zap.Logger, method string, err *error) {
	if x := recover(); x != nil {
		log.Error("panic in gRPC handler", zap.String("method", method), zap.Any("panic", x),
			zap.ByteString("stack", debug.Stack()))
		*err = rpcerr.ToGRPC(rpcerr.New(vtrpcpb.Code_INTERNAL, "uncaught panic in %s: %v", method, x))
	}
}
