package pool

import (
	"context"
	"errors"
	"testing"
)

// settingsCounts are what the fake saw, plus the pool's reconnect-resets.
type settingsCounts struct{ dials, applies, resets, reconnects int64 }

// settingsCase is one reuse scenario.
type settingsCase struct {
	name     string
	capacity int
	setup    func(d *fakeDialer)
	run      func(t *testing.T, p *Pool[*fakeConn])
	want     settingsCounts
}

func settingsCases() []settingsCase {
	s1 := &Setting{Query: "set @@sql_mode = ''"}
	s1b := &Setting{Query: "set @@sql_mode = ''"} // same key, another pointer
	s2 := &Setting{Query: "set @@time_zone = '+00:00'"}
	return []settingsCase{
		{"same settings reuse the connection", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, s1)
			a.Recycle()
			if b := get(t, p, s1b); b != a {
				t.Errorf("not reused")
			}
		}, settingsCounts{dials: 1, applies: 1}},
		{"clean request under capacity dials and keeps the settings connection", 2, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, s1)
			a.Recycle()
			if b := get(t, p, nil); b == a {
				t.Errorf("clean request got the settings connection")
			}
			if c := get(t, p, s1); c != a {
				t.Errorf("settings connection not kept for reuse")
			}
		}, settingsCounts{dials: 2, applies: 1}},
		{"clean request at capacity resets", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, s1)
			a.Recycle()
			if b := get(t, p, nil); b.Conn() != a.Conn() {
				t.Errorf("not reset in place")
			}
		}, settingsCounts{dials: 1, applies: 1, resets: 1}},
		{"settings request takes a clean connection", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, nil)
			a.Recycle()
			if b := get(t, p, s1); b != a {
				t.Errorf("clean connection not used")
			}
		}, settingsCounts{dials: 1, applies: 1}},
		{"settings request prefers clean over dialing", 2, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			get(t, p, nil).Recycle()
			get(t, p, s1)
		}, settingsCounts{dials: 1, applies: 1}},
		{"other settings at capacity: reset then apply", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, s1)
			a.Recycle()
			if b := get(t, p, s2); b.Conn() != a.Conn() {
				t.Errorf("not converted in place")
			}
		}, settingsCounts{dials: 1, applies: 2, resets: 1}},
		{"failed reset reconnects", 1, func(d *fakeDialer) { d.failReset.Store(true) }, func(t *testing.T, p *Pool[*fakeConn]) {
			a := get(t, p, s1)
			a.Recycle()
			if b := get(t, p, nil); b.Conn() == a.Conn() || !a.Conn().closed.Load() {
				t.Errorf("connection with unknown state kept")
			}
		}, settingsCounts{dials: 2, applies: 1, resets: 1, reconnects: 1}},
		{"empty Query means no settings", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			get(t, p, &Setting{})
		}, settingsCounts{dials: 1}},
		{"waiter with settings gets the returned connection converted", 1, nil, func(t *testing.T, p *Pool[*fakeConn]) {
			a := mustGet(t, p, nil)
			w := startWaiter(t, context.Background(), p, s1, 1)
			a.Recycle()
			r := recv(t, w)
			if r.err != nil || r.pc != a || r.pc.Conn().appliedQuery() != s1.Query {
				t.Fatalf("waiter: %v", r.err)
			}
			r.pc.Recycle()
		}, settingsCounts{dials: 1, applies: 1}},
	}
}

func TestSettingsReuse(t *testing.T) {
	for _, tt := range settingsCases() {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			if tt.setup != nil {
				tt.setup(d)
			}
			p := newTestPool(t, Config{Capacity: tt.capacity}, d, Deps{})
			tt.run(t, p)
			got := settingsCounts{d.dials.Load(), d.applies.Load(), d.resets.Load(), p.Stats().ResetReconnect}
			if got != tt.want {
				t.Errorf("counts = %+v, want %+v", got, tt.want)
			}
			if s := p.Stats(); s.SettingApplies != tt.want.applies {
				t.Errorf("stats %+v", s)
			}
			checkInvariants(t, p)
		})
	}
}

// get is mustGet plus the settings invariant: the connection carries exactly what was
// asked for. It recycles the connection at the end of the test unless returned earlier.
func get(t *testing.T, p *Pool[*fakeConn], s *Setting) *Pooled[*fakeConn] {
	t.Helper()
	pc := mustGet(t, p, s)
	want := ""
	if s != nil {
		want = s.Query
	}
	if got := pc.Conn().appliedQuery(); got != want {
		t.Errorf("connection carries %q, want %q", got, want)
	}
	if !sameSetting(pc.Setting(), s) && !(s != nil && s.Query == "" && pc.Setting() == nil) {
		t.Errorf("Pooled.Setting = %v, want %v", pc.Setting(), s)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		busy := pc.busy
		p.mu.Unlock()
		if busy {
			pc.Recycle()
		}
	})
	return pc
}

// TestSettingsWithoutResetter: a connection that cannot reset is reconnected.
func TestSettingsWithoutResetter(t *testing.T) {
	d := &fakeDialer{}
	p, err := New(Config{Name: "P", Capacity: 1}, connector(d, func(c *fakeConn) applyOnlyConn { return applyOnlyConn{c} }), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, err := p.Get(context.Background(), &Setting{Query: "set x=1"})
	if err != nil {
		t.Fatal(err)
	}
	a.Recycle()
	b, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Conn().c == a.Conn().c || !a.Conn().c.closed.Load() || b.Setting() != nil {
		t.Fatalf("connection with settings not replaced by a clean one")
	}
	b.Recycle()
	if s := p.Stats(); s.ResetReconnect != 1 || s.Dials != 2 || s.Open != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSettingsUnsupported: a settings request on a connection type without SettingApplier
// fails and leaves the connection in the pool.
func TestSettingsUnsupported(t *testing.T) {
	d := &fakeDialer{}
	p, err := New(Config{Name: "P", Capacity: 1}, connector(d, func(c *fakeConn) plainConn { return plainConn{c} }), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Get(context.Background(), &Setting{Query: "set x=1"}); !errors.Is(err, ErrSettingsUnsupported) {
		t.Fatalf("Get = %v, want ErrSettingsUnsupported", err)
	}
	if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.InUse != 0 {
		t.Fatalf("stats %+v", s)
	}
	checkInvariants(t, p)
}

// TestApplyFailureFreesSlot: a connection whose settings failed to apply is closed, and its
// slot serves the next request.
func TestApplyFailureFreesSlot(t *testing.T) {
	d := &fakeDialer{}
	d.failApply.Store(true)
	p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
	if _, err := p.Get(context.Background(), &Setting{Query: "set x=1"}); !errors.Is(err, errApplyFailed) {
		t.Fatalf("Get = %v", err)
	}
	if s := p.Stats(); s.Open != 0 || d.live.Load() != 0 {
		t.Fatalf("slot not freed: %+v", s)
	}
	mustGet(t, p, nil).Recycle()
	checkInvariants(t, p)
}
