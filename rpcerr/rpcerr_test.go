package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

func TestCodeAndGRPC(t *testing.T) {
	base := errors.New("cause")
	for _, tc := range []struct {
		name  string
		err   error
		want  vtrpcpb.Code
		coded bool // carries an *Error, so errors.Is(err, OfCode(want)) holds
	}{
		{"nil", nil, vtrpcpb.Code_OK, false},
		{"coded", New(vtrpcpb.Code_CLUSTER_EVENT, NotServing), vtrpcpb.Code_CLUSTER_EVENT, true},
		{"wrapped coded", fmt.Errorf("ctx: %w", Wrap(vtrpcpb.Code_ABORTED, base, "tx")), vtrpcpb.Code_ABORTED, true},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), vtrpcpb.Code_DEADLINE_EXCEEDED, false},
		{"canceled", context.Canceled, vtrpcpb.Code_CANCELED, false},
		{"grpc status", status.Error(codes.Unavailable, "x"), vtrpcpb.Code_UNAVAILABLE, false},
		{"plain", base, vtrpcpb.Code_UNKNOWN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.want {
				t.Fatalf("Code = %v, want %v", got, tc.want)
			}
			if tc.err == nil {
				return
			}
			// The numeric gRPC status code is the vtrpc code: vtgate reads it back as such.
			if got := status.Code(ToGRPC(tc.err)); int32(got) != int32(tc.want) {
				t.Fatalf("gRPC code = %d, want %d", got, tc.want)
			}
			if tc.coded && !errors.Is(tc.err, OfCode(tc.want)) {
				t.Fatalf("errors.Is(err, OfCode(%v)) is false", tc.want)
			}
		})
	}
	if !errors.Is(Wrap(vtrpcpb.Code_ABORTED, base, "tx"), base) {
		t.Fatal("the cause must stay reachable")
	}
}

func TestTruncate(t *testing.T) {
	long := New(vtrpcpb.Code_INVALID_ARGUMENT, "%s", strings.Repeat("x", 20000))
	msg := status.Convert(ToGRPC(long)).Message()
	if len(msg) > maxMessageLen || !strings.HasSuffix(msg, "[TRUNCATED]") {
		t.Fatalf("message of %d bytes, suffix %q", len(msg), msg[len(msg)-12:])
	}
	if ToRPCError(long).Code != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatal("in-band error lost its code")
	}
}
