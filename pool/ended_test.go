package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// passedDeadline is a context whose deadline has passed but whose timer has not fired yet:
// the moment in which net.Dialer has already given up on the dial ("i/o timeout").
type passedDeadline struct{ context.Context }

func (passedDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestIOErrCallerDeadlineWins: a dial that the caller's own deadline ended reports the
// caller's deadline, even before ctx.Err() says so, not the dial's error (UNAVAILABLE).
func TestIOErrCallerDeadlineWins(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	dialErr := errors.New("dial tcp 127.0.0.1:1: i/o timeout")
	var p Pool[*fakeConn]
	p.cfg.Name = "ConnPool"
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"deadline passed, timer not fired", passedDeadline{context.Background()}, context.DeadlineExceeded},
		{"canceled", canceled, context.Canceled},
		{"still running", context.Background(), dialErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.ioErr(tc.ctx, tc.ctx, "dialing", dialErr); !errors.Is(err, tc.want) {
				t.Fatalf("ioErr = %v, want %v", err, tc.want)
			}
		})
	}
}
