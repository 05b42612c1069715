package pool

import (
	"context"
	"testing"
)

// BenchmarkGetPut is one caller taking and returning an idle connection: the pool's
// fixed cost per query. It must not allocate.
func BenchmarkGetPut(b *testing.B) {
	for _, bb := range []struct {
		name    string
		setting *Setting
	}{
		{"clean", nil},
		{"settings", &Setting{Query: "set @@sql_mode = ''"}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := newTestPool(b, Config{Capacity: 64}, &fakeDialer{}, Deps{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				pc, err := p.Get(ctx, bb.setting)
				if err != nil {
					b.Fatal(err)
				}
				pc.Recycle()
			}
		})
	}
}

// BenchmarkGetPutParallel is GOMAXPROCS callers at once: with spare capacity (the mutex is
// the only contention) and with capacity 1 (every Get but one waits in line).
func BenchmarkGetPutParallel(b *testing.B) {
	for _, bb := range []struct {
		name     string
		capacity int
	}{
		{"cap=64", 64},
		{"cap=1", 1},
	} {
		b.Run(bb.name, func(b *testing.B) {
			p := newTestPool(b, Config{Capacity: bb.capacity}, &fakeDialer{}, Deps{})
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pc, err := p.Get(ctx, nil)
					if err != nil {
						b.Error(err)
						return
					}
					pc.Recycle()
				}
			})
		})
	}
}

// TestGetPutAllocs pins the no-allocation promise for the uncontended path.
func TestGetPutAllocs(t *testing.T) {
	p := newTestPool(t, Config{Capacity: 4}, &fakeDialer{}, Deps{})
	s := &Setting{Query: "set a=1"}
	ctx := context.Background()
	for _, setting := range []*Setting{nil, s} {
		mustGet(t, p, setting).Recycle() // warm
		if n := testing.AllocsPerRun(1000, func() {
			pc, err := p.Get(ctx, setting)
			if err != nil {
				t.Fatal(err)
			}
			pc.Recycle()
		}); n != 0 {
			t.Errorf("Get/Recycle (setting %v) allocates %v times", setting, n)
		}
	}
}
