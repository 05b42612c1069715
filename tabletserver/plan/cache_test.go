package plan

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestCacheLRU(t *testing.T) {
	c := NewCache(2)
	pa, pb, pc := &Plan{Statement: "a"}, &Plan{Statement: "b"}, &Plan{Statement: "c"}
	c.Add("a", pa)
	c.Add("b", pb)
	c.Add("c", pc) // full, neither hit since added: the hand evicts a
	if _, ok := c.Get("a"); ok {
		t.Error("a was not evicted")
	}
	if p, ok := c.Get("b"); !ok || p != pb { // b becomes recently used again
		t.Fatalf("Get(b) = %v, %v", p, ok)
	}
	c.Add("a", pa) // b was hit, c was not: c goes
	if _, ok := c.Get("c"); ok {
		t.Error("c (unused) was evicted instead of b (used)")
	}
	if p, ok := c.Get("b"); !ok || p != pb {
		t.Fatalf("b (recently used) was evicted")
	}
	if got := c.Keys(); len(got) != 2 || !slices.Contains(got, "a") || !slices.Contains(got, "b") {
		t.Errorf("Keys = %v, want a and b", got)
	}
	c.Add("a", pc) // replaces, no growth
	if p, _ := c.Get("a"); p != pc || c.Len() != 2 {
		t.Errorf("replace: got %v, len %d", p, c.Len())
	}
	var seen []string
	c.Range(func(sql string, p *Plan) bool {
		seen = append(seen, sql)
		c.Delete(sql) // the callback may use the cache
		return true
	})
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"a", "b"}) || c.Len() != 0 {
		t.Errorf("Range saw %v, len after %d", seen, c.Len())
	}
	c.Add("x", pa)
	c.Add("y", pb)
	n := 0
	c.Range(func(string, *Plan) bool { n++; return false })
	if n != 1 {
		t.Errorf("Range did not stop: %d calls", n)
	}
	c.Clear()
	if c.Len() != 0 || len(c.Keys()) != 0 || c.Capacity() != 2 {
		t.Errorf("after Clear: len %d keys %v", c.Len(), c.Keys())
	}
}

func TestCacheDisabled(t *testing.T) {
	for _, capacity := range []int{0, -1} {
		c := NewCache(capacity)
		c.Add("a", &Plan{})
		if _, ok := c.Get("a"); ok || c.Len() != 0 {
			t.Errorf("capacity %d: cached a plan", capacity)
		}
	}
}

// TestConcurrentBuildAndCache builds and caches plans from many goroutines (run with -race).
func TestConcurrentBuildAndCache(t *testing.T) {
	b := NewBuilder()
	c := NewCache(16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				sql := fmt.Sprintf("select * from t%d join u on t%d.id = u.id where a = :a", (g+i)%32, i%7)
				p, ok := c.Get(sql)
				if !ok {
					var err error
					if p, err = b.Build(sql); err != nil {
						t.Error(err)
						return
					}
					c.Add(sql, p)
				}
				if len(p.Tables) != 2 || p.Type != Select {
					t.Errorf("%s: %+v", sql, p)
					return
				}
				c.Range(func(string, *Plan) bool { return true })
				_ = c.Keys()
			}
		}()
	}
	wg.Wait()
	if c.Len() > 16 {
		t.Errorf("cache holds %d plans, capacity 16", c.Len())
	}
}
