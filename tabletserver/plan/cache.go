package plan

import (
	"sync"
	"sync/atomic"
)

// Cache is a bounded cache of plans keyed by SQL text, safe for concurrent use. A capacity of
// zero or less disables it: Get misses and Add does nothing.
//
// Every query looks its plan up here, from every connection at once, so a hit takes no lock:
// the map is a sync.Map and recency is one "used" bit per entry (the CLOCK approximation of
// LRU). Adds and evictions, rare in steady state, take mu. An entry used since the clock hand
// last passed survives eviction; among unused ones the hand's order decides.
type Cache struct {
	capacity int
	m        sync.Map // string → *cacheEntry

	mu   sync.Mutex    // guards ring and hand
	ring []*cacheEntry // every cached entry, in clock order
	hand int
}

type cacheEntry struct {
	sql  string
	plan atomic.Pointer[Plan]
	used atomic.Bool
	slot int // index in ring; guarded by Cache.mu
}

// NewCache returns a Cache holding at most capacity plans.
func NewCache(capacity int) *Cache { return &Cache{capacity: capacity} }

// Get returns the plan cached for sql and marks it recently used.
func (c *Cache) Get(sql string) (*Plan, bool) {
	v, ok := c.m.Load(sql)
	if !ok {
		return nil, false
	}
	e := v.(*cacheEntry)
	if !e.used.Load() { // read first: no cache-line write on the hot path
		e.used.Store(true)
	}
	return e.plan.Load(), true
}

// Add caches p for sql (replacing a cached plan), evicting a plan not used recently when the
// cache is full.
func (c *Cache) Add(sql string, p *Plan) {
	if c.capacity <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m.Load(sql); ok {
		e := v.(*cacheEntry)
		e.plan.Store(p)
		e.used.Store(true)
		return
	}
	// A new entry starts unused: it earns its place by being hit before the hand comes round,
	// so a burst of one-off statements cannot push out the hot ones.
	e := &cacheEntry{sql: sql}
	e.plan.Store(p)
	if len(c.ring) < c.capacity {
		e.slot = len(c.ring)
		c.ring = append(c.ring, e)
	} else {
		victim := c.evictLocked()
		e.slot = victim
		c.ring[victim] = e
	}
	c.m.Store(sql, e)
}

// evictLocked advances the clock hand to an entry not used since the hand last passed,
// removes it from the map and returns its slot.
func (c *Cache) evictLocked() int {
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		if e.used.Load() {
			e.used.Store(false)
			c.hand++
			continue
		}
		c.m.Delete(e.sql)
		slot := c.hand
		c.hand++
		return slot
	}
}

// Delete removes the plan cached for sql.
func (c *Cache) Delete(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m.LoadAndDelete(sql)
	if !ok {
		return
	}
	e := v.(*cacheEntry)
	last := len(c.ring) - 1
	c.ring[e.slot] = c.ring[last]
	c.ring[e.slot].slot = e.slot
	c.ring[last] = nil
	c.ring = c.ring[:last]
}

// Clear removes every plan.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.Clear()
	clear(c.ring)
	c.ring, c.hand = c.ring[:0], 0
}

// Len returns the number of cached plans.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ring)
}

// Capacity returns the most plans the cache holds.
func (c *Cache) Capacity() int { return c.capacity }

// Keys returns the cached SQL texts, in clock order.
func (c *Cache) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, len(c.ring))
	for i, e := range c.ring {
		keys[i] = e.sql
	}
	return keys
}

// Range calls f for each cached plan, in clock order, until f returns false. It works on a
// snapshot: f may use the cache, and does not see changes made meanwhile.
func (c *Cache) Range(f func(sql string, p *Plan) bool) {
	c.mu.Lock()
	snapshot := make([]*cacheEntry, len(c.ring))
	copy(snapshot, c.ring)
	c.mu.Unlock()
	for _, e := range snapshot {
		if !f(e.sql, e.plan.Load()) {
			return
		}
	}
}
