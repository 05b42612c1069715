// Package rpcerr gives tabletd's errors a Vitess vtrpc code, keeps MySQL's errno, and maps both to gRPC at the edge.
package rpcerr

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

// Messages vtgate matches by text: its buffering and retry logic look for these exact strings
// (Vitess go/vt/vterrors/constants.go), so they must never be reworded.
const (
	NotServing   = "operation not allowed in state NOT_SERVING"
	ShuttingDown = "operation not allowed in state SHUTTING_DOWN"
	WrongTablet  = "wrong tablet type"
)

// maxMessageLen bounds an error message on the wire, as vttablet does (8 KiB - 512), so a huge
// SQL text quoted in an error never breaks the gRPC frame.
const maxMessageLen = 8*1024 - 512

// Error is an error with a vtrpc code. Err, when set, is the cause (for example a MySQL error
// carrying its errno) and is reachable through errors.As / errors.Is.
type Error struct {
	Code vtrpcpb.Code
	Msg  string
	Err  error
	// msgOnly: Msg already says everything; Err is kept only for errors.As (see WithCause).
	msgOnly bool
}

func (e *Error) Error() string {
	if e.Err == nil || e.msgOnly {
		return e.Msg
	}
	if e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: c}) true for any error of code c with no message:
// tests and callers compare codes, never texts.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// New returns an error with the given code and formatted message.
func New(code vtrpcpb.Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with the given code whose cause is err.
func Wrap(code vtrpcpb.Code, err error, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: err}
}

// WithCause returns an error with code and exactly the message msg, whose cause err stays
// reachable through errors.As but is not repeated in the text.
func WithCause(code vtrpcpb.Code, msg string, err error) error {
	return &Error{Code: code, Msg: msg, Err: err, msgOnly: true}
}

// OfCode is a comparison target: errors.Is(err, rpcerr.OfCode(c)) reports whether err has code c.
func OfCode(code vtrpcpb.Code) error { return &Error{Code: code} }

// Code returns the vtrpc code of err: its own code when it has one, the code of a context
// error, UNKNOWN otherwise. nil has code OK.
func Code(err error) vtrpcpb.Code {
	if err == nil {
		return vtrpcpb.Code_OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return vtrpcpb.Code_DEADLINE_EXCEEDED
	case errors.Is(err, context.Canceled):
		return vtrpcpb.Code_CANCELED
	}
	if s, ok := status.FromError(err); ok {
		return vtrpcpb.Code(s.Code())
	}
	return vtrpcpb.Code_UNKNOWN
}

// ToGRPC is the one place an error becomes a gRPC status: the numeric status code is the
// vtrpc code (vtgate reads it back as such, including CLUSTER_EVENT=17 and READ_ONLY=18).
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Code(Code(err)), truncate(err.Error()))
}

// ToRPCError converts err to the in-band error of Begin/Reserve responses.
func ToRPCError(err error) *vtrpcpb.RPCError {
	if err == nil {
		return nil
	}
	return &vtrpcpb.RPCError{Code: Code(err), Message: truncate(err.Error())}
}

func truncate(msg string) string {
	if len(msg) <= maxMessageLen {
		return msg
	}
	return msg[:maxMessageLen-12] + " [TRUNCATED]"
}
