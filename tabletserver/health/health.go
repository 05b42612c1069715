// Package health broadcasts a tablet's health record (StreamHealthResponse) to every StreamHealth subscriber.
package health

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Broadcaster holds the current health record and hands it to subscribers.
//
// Unlike a fixed per-client queue, each subscriber has a one-slot mailbox that always holds
// the newest record: a slow client skips intermediate states instead of being disconnected
// (vttablet closes the stream on buffer overflow), and Publish never blocks on a client.
type Broadcaster struct {
	mu      sync.Mutex
	current *querypb.StreamHealthResponse // never nil; owned by the Broadcaster, cloned on the way out
	subs    map[*subscriber]struct{}
	closed  chan struct{} // closed by Close
	once    sync.Once
}

type subscriber struct {
	mu     sync.Mutex
	latest *querypb.StreamHealthResponse // nil once taken
	notify chan struct{}                 // capacity 1: "latest has something"
}

// New returns a Broadcaster whose first record is initial.
func New(initial *querypb.StreamHealthResponse) *Broadcaster {
	return &Broadcaster{
		current: proto.Clone(initial).(*querypb.StreamHealthResponse),
		subs:    map[*subscriber]struct{}{},
		closed:  make(chan struct{}),
	}
}

// Publish makes shr the current record and offers it to every subscriber. It never blocks.
func (b *Broadcaster) Publish(shr *querypb.StreamHealthResponse) {
	c := proto.Clone(shr).(*querypb.StreamHealthResponse)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.current = c
	for s := range b.subs {
		s.offer(c)
	}
}

// Current returns a copy of the current record.
func (b *Broadcaster) Current() *querypb.StreamHealthResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	return proto.Clone(b.current).(*querypb.StreamHealthResponse)
}

// Subscribers returns how many streams are attached.
func (b *Broadcaster) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Stream sends the current record at once, then every newer one, until ctx ends (nil error),
// send fails (its error), or the Broadcaster is closed (UNAVAILABLE, so vtgate reconnects).
func (b *Broadcaster) Stream(ctx context.Context, send func(*querypb.StreamHealthResponse) error) error {
	s := &subscriber{notify: make(chan struct{}, 1)}
	b.mu.Lock()
	select {
	case <-b.closed:
		b.mu.Unlock()
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tabletserver is shutdown")
	default:
	}
	s.offer(b.current)
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.closed:
			return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "tabletserver is shutdown")
		case <-s.notify:
			// A token may outlive the record it announced (taken by the previous turn).
			shr := s.take()
			if shr == nil {
				continue
			}
			if err := send(shr); err != nil {
				return err
			}
		}
	}
}

// Close ends every stream. Idempotent.
func (b *Broadcaster) Close() {
	b.once.Do(func() { close(b.closed) })
}

// offer replaces the subscriber's pending record. The records are immutable once published,
// so sharing one clone among subscribers is safe.
func (s *subscriber) offer(shr *querypb.StreamHealthResponse) {
	s.mu.Lock()
	s.latest = shr
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *subscriber) take() *querypb.StreamHealthResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.latest
	s.latest = nil
	return r
}
