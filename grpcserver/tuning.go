package grpcserver

import (
	"fmt"

	"google.golang.org/grpc"
)

// minWindowSize is HTTP/2's default flow-control window (65,535 bytes); gRPC ignores a
// smaller setting.
const minWindowSize = 1<<16 - 1

// Tuning is the transport side of a tabletd gRPC server.
type Tuning struct {
	// StreamWorkers is how many long-lived goroutines run the handlers. A call that finds
	// them all busy gets a goroutine of its own, which starts with a small stack and grows
	// it by copying on the way to the MySQL round trip (runtime.newstack was 5% of
	// tabletd's CPU per point select with 2 workers at 8 clients). A worker keeps its grown
	// stack between calls. 0: a new goroutine for every call (gRPC's default).
	StreamWorkers int
	// InitialWindowSize and InitialConnWindowSize are the HTTP/2 flow-control windows the
	// server grants per stream and per connection (vttablet's
	// --grpc-server-initial-window-size and --grpc-server-initial-conn-window-size).
	// 0 keeps gRPC's default: 64 KiB windows sized up by BDP estimation, which pings the
	// client once per round trip while requests arrive. Setting either turns the
	// estimation off for both.
	InitialWindowSize, InitialConnWindowSize int32
}

// DefaultTuning is tabletd's default: enough workers for every call in flight up to the
// default pools and their queues, and fixed 1 MiB windows. Queryservice requests are small
// (a statement and its bind variables), so BDP estimation never grows the window and only
// costs its pings: at one client they were 1.7 of the 6.4 reads per point select.
func DefaultTuning() Tuning {
	return Tuning{StreamWorkers: 256, InitialWindowSize: defaultWindow, InitialConnWindowSize: defaultWindow}
}

// defaultWindow is DefaultTuning's flow-control window.
const defaultWindow = 1 << 20

// Validate reports a setting gRPC would reject or silently ignore.
func (t Tuning) Validate() error {
	if t.StreamWorkers < 0 || t.StreamWorkers > 1<<16 {
		return fmt.Errorf("--grpc-stream-workers must be between 0 and 65536 (got %d)", t.StreamWorkers)
	}
	for _, w := range []struct {
		flag string
		v    int32
	}{{"--grpc-server-initial-window-size", t.InitialWindowSize}, {"--grpc-server-initial-conn-window-size", t.InitialConnWindowSize}} {
		if w.v != 0 && w.v < minWindowSize {
			return fmt.Errorf("%s must be 0 (gRPC's default) or at least %d bytes (got %d)", w.flag, minWindowSize, w.v)
		}
	}
	return nil
}

func (t Tuning) options() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if t.StreamWorkers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(t.StreamWorkers)))
	}
	if t.InitialWindowSize > 0 {
		opts = append(opts, grpc.InitialWindowSize(t.InitialWindowSize))
	}
	if t.InitialConnWindowSize > 0 {
		opts = append(opts, grpc.InitialConnWindowSize(t.InitialConnWindowSize))
	}
	return opts
}
