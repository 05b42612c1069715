package consolidator

import "container/list"

// Entry is one recently consolidated query and how many waiters it has served.
type Entry struct {
	Key   string
	Count int64
}

// recent is a bounded LRU of consolidated keys; guarded by Consolidator.mu.
type recent struct {
	max   int
	order *list.List // of *Entry, most recent first
	byKey map[string]*list.Element
}

func newRecent(max int) *recent {
	return &recent{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

func (r *recent) add(key string, n int64) {
	if el, ok := r.byKey[key]; ok {
		el.Value.(*Entry).Count += n
		r.order.MoveToFront(el)
		return
	}
	r.byKey[key] = r.order.PushFront(&Entry{Key: key, Count: n})
	for r.order.Len() > r.max {
		last := r.order.Back()
		r.order.Remove(last)
		delete(r.byKey, last.Value.(*Entry).Key)
	}
}

func (r *recent) list() []Entry {
	out := make([]Entry, 0, r.order.Len())
	for el := r.order.Front(); el != nil; el = el.Next() {
		out = append(out, *el.Value.(*Entry))
	}
	return out
}
