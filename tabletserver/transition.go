package tabletserver

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Want is the state the tablet manager asks of the query service: the tablet's type, the
// start of its primary term (PRIMARY only) and whether it should serve (Reason says why not).
type Want struct {
	Type             topodatapb.TabletType
	PrimaryTermStart time.Time
	Serving          bool
	Reason           string
}

func (w Want) same(o Want) bool {
	return w.Type == o.Type && w.PrimaryTermStart.Equal(o.PrimaryTermStart) && w.Serving == o.Serving && w.Reason == o.Reason
}

// Component is a part of the query service that runs only in some states (the heartbeat
// writer on a serving primary, the heartbeat reader on replicas). Open starts it and must
// leave nothing running when it fails; Close stops it; both may be called again later.
type Component interface {
	Open(ctx context.Context) error
	Close()
}

// LagReader is a Component that measures replication lag (the heartbeat reader).
type LagReader interface {
	Component
	// Lag is the replication lag; known is false (never a reassuring 0) when it cannot be
	// measured, reason then says why.
	Lag() (lag time.Duration, known bool, reason string)
}

// components are the optional state-bound parts; guarded by Server.transition.
type components struct {
	writer     Component
	reader     LagReader
	writerOpen bool
	readerOpen bool
}

// Transition moves the query service to w. It is the one way the serving state changes (the
// tablet manager calls it for every type change, demotion and promotion), and it returns only
// when the new state holds:
//
//   - Leaving a serving state (serving stops, or the type changes) first winds the old state
//     down: new requests are refused with NOT_SERVING (CLUSTER_EVENT, so vtgate buffers them
//     while a primary is replaced); requests bound to open transactions and reserved
//     connections are still admitted for up to the transition grace period; then what is left
//     is rolled back, running statements are killed, and the transaction engine is reopened
//     empty. So once Transition returns from a PRIMARY, no write of that primary term can
//     still commit through tabletd — DemotePrimary relies on it before it reads the position.
//   - The heartbeat writer runs only on a serving PRIMARY, the reader only on other types.
//
// ctx bounds the wait for in-flight work (the grace period bounds it too). Transitions are
// serialized; a Transition to the current state does nothing.
func (s *Server) Transition(ctx context.Context, w Want) {
	s.transition.Lock()
	defer s.transition.Unlock()
	s.mu.Lock()
	cur := Want{Type: s.tabletType, PrimaryTermStart: s.ptsTime, Serving: s.wantServing, Reason: s.wantReason}
	s.mu.Unlock()
	if cur.same(w) {
		return
	}
	if cur.Serving && (!w.Serving || w.Type != cur.Type || !w.PrimaryTermStart.Equal(cur.PrimaryTermStart)) {
		reason := w.Reason
		if reason == "" {
			reason = "tablet type change to " + w.Type.String()
		}
		s.drain(ctx, reason)
	}
	s.mu.Lock()
	typeChanged := w.Type != s.tabletType
	if typeChanged || !w.PrimaryTermStart.Equal(s.ptsTime) {
		s.termCheck = false // a new term (or no longer primary) needs no check of the old one
	}
	s.tabletType, s.ptsTime, s.wantServing, s.wantReason = w.Type, w.PrimaryTermStart, w.Serving, w.Reason
	s.mu.Unlock()
	if typeChanged {
		// Replication health depends on the type: re-measure before claiming anything.
		s.RunHealthCheck()
	}
	s.update(true)
	s.applyComponents(ctx)
}

// SetServingType is Transition without a caller deadline (the grace period still bounds it).
func (s *Server) SetServingType(tt topodatapb.TabletType, pts time.Time, serving bool, reason string) {
	s.Transition(context.Background(), Want{Type: tt, PrimaryTermStart: pts, Serving: serving, Reason: reason})
}

// drain winds the current serving state down (see Transition). Called with s.transition held.
func (s *Server) drain(ctx context.Context, reason string) {
	begin := s.now()
	s.mu.Lock()
	s.draining, s.wantServing, s.wantReason = true, false, reason
	s.mu.Unlock()
	s.update(true) // refuse new requests and tell vtgate at once
	gctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGracePeriod)
	s.waitQuiet(gctx, func() bool { return s.inflight.Load() == 0 && s.exec.tx.count() == 0 })
	cancel()
	left := s.exec.tx.count()
	s.exec.tx.shutdown("rolled back: " + reason)
	killed := s.exec.terminateAll("state transition")
	// Killed statements return at once; bound the wait anyway (a hung MySQL must not hang
	// the transition: its requests then fail on their own deadlines).
	kctx, kcancel := context.WithTimeout(ctx, 2*s.cfg.Query.KillTimeout)
	s.waitQuiet(kctx, func() bool { return s.inflight.Load() == 0 })
	kcancel()
	s.exec.tx.open()
	s.mu.Lock()
	s.draining = false
	s.mu.Unlock()
	s.log.Info("serving state wound down", zap.String("reason", reason), zap.Duration("took", s.now().Sub(begin)),
		zap.Int("transactions_rolled_back", left), zap.Int("statements_killed", killed),
		zap.Int64("requests_still_running", s.inflight.Load()))
}

// waitQuiet polls done until it holds or ctx ends.
func (s *Server) waitQuiet(ctx context.Context, done func() bool) {
	if done() {
		return
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// followServing applies the components to the actual serving state after a probe; a
// transition in progress applies them itself when it ends.
func (s *Server) followServing(ctx context.Context) {
	if s.transition.TryLock() {
		s.applyComponents(ctx)
		s.transition.Unlock()
	}
}

// applyComponents opens and closes the state-bound components for the current state: the
// heartbeat writer only while actually serving as PRIMARY (not while MySQL is down, nor
// while a returned MySQL's primary term is unconfirmed), the reader on every other type. A
// component that fails to open is logged and retried after the next probe; the tablet serves
// without it (the heartbeat's absence shows as unknown lag on replicas). Called with
// s.transition held.
func (s *Server) applyComponents(ctx context.Context) {
	c := &s.comps
	s.mu.Lock()
	tt, serving := s.tabletType, s.serving
	s.mu.Unlock()
	wantWriter := c.writer != nil && serving && tt == topodatapb.TabletType_PRIMARY
	wantReader := c.reader != nil && tt != topodatapb.TabletType_PRIMARY
	if c.writerOpen && !wantWriter {
		c.writer.Close()
		c.writerOpen = false
	}
	if c.readerOpen && !wantReader {
		c.reader.Close()
		c.readerOpen = false
	}
	if wantWriter && !c.writerOpen {
		if err := c.writer.Open(ctx); err != nil {
			s.log.Warn("heartbeat writer not started", zap.Error(err))
		} else {
			c.writerOpen = true
		}
	}
	if wantReader && !c.readerOpen {
		if err := c.reader.Open(ctx); err != nil {
			s.log.Warn("heartbeat reader not started", zap.Error(err))
		} else {
			c.readerOpen = true
		}
	}
}

// closeAll stops every component (Close of the Server).
func (c *components) closeAll() {
	if c.writerOpen {
		c.writer.Close()
		c.writerOpen = false
	}
	if c.readerOpen {
		c.reader.Close()
		c.readerOpen = false
	}
}

// heartbeatLag returns the heartbeat reader's lag when a reader runs.
func (s *Server) heartbeatLag() (lag time.Duration, known bool, reason string, ok bool) {
	r := s.comps.reader
	if r == nil {
		return 0, false, "", false
	}
	lag, known, reason = r.Lag()
	return lag, known, reason, true
}
