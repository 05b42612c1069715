package grpcserver

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tabletd/tabletd/rpcerr"
)

// tmMethodPrefix is the gRPC path prefix of the TabletManager service.
const tmMethodPrefix = "/tabletmanagerservice.TabletManager/"

// keptErrors bounds the recent TabletManager errors kept for /debug/status.
const keptErrors = 20

// RPCError is one failed TabletManager RPC.
type RPCError struct {
	At      time.Time
	Method  string
	Code    string
	Message string
}

// RPCStats counts TabletManager RPCs by method and outcome (the vtrpc code, "OK" for
// success) and times them, for /metrics, and keeps the latest errors for /debug/status.
type RPCStats struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	now      func() time.Time

	mu     sync.Mutex
	errors []RPCError // newest last
}

// NewRPCStats registers the metrics on reg with constLabels (keyspace, shard).
func NewRPCStats(reg prometheus.Registerer, constLabels prometheus.Labels, now func() time.Time) (*RPCStats, error) {
	s := &RPCStats{now: now,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_tabletmanager_rpcs_total",
			Help: "TabletManager RPCs served, by method and outcome (vtrpc code).", ConstLabels: constLabels}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tabletd_tabletmanager_rpc_seconds",
			Help: "TabletManager RPC durations, by method.", ConstLabels: constLabels,
			Buckets: []float64{.001, .005, .02, .1, .5, 1, 5, 30}}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{s.calls, s.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Interceptor observes the unary TabletManager RPCs; other services pass through.
func (s *RPCStats) Interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		method, ok := strings.CutPrefix(info.FullMethod, tmMethodPrefix)
		if !ok {
			return h(ctx, req)
		}
		begin := s.now()
		resp, err := h(ctx, req)
		s.observe(method, s.now().Sub(begin), err)
		return resp, err
	}
}

func (s *RPCStats) observe(method string, took time.Duration, err error) {
	code := rpcerr.Code(err).String()
	s.calls.WithLabelValues(method, code).Inc()
	s.duration.WithLabelValues(method).Observe(took.Seconds())
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors = append(s.errors, RPCError{At: s.now(), Method: method, Code: code, Message: err.Error()})
	if len(s.errors) > keptErrors {
		s.errors = s.errors[len(s.errors)-keptErrors:]
	}
}

// RecentErrors returns the latest failed RPCs, newest first.
func (s *RPCStats) RecentErrors() []RPCError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RPCError, len(s.errors))
	for i, e := range s.errors {
		out[len(s.errors)-1-i] = e
	}
	return out
}
