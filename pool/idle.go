package pool

// idleSet holds a pool's idle connections: clean ones in one stack, those carrying session
// settings in one stack per Setting.Query. Stacks are LIFO (most recently used last), so hot
// connections are reused and cold ones age out under IdleTimeout. Guarded by Pool.mu.
type idleSet[C Conn] struct {
	clean  []*Pooled[C]
	dirty  map[string][]*Pooled[C]
	ndirty int // connections in dirty
}

// maxEmptyKeys bounds how many drained per-setting stacks are kept for reuse: keeping a few
// avoids an allocation per settings Get/Recycle; dropping the rest keeps the map small when
// clients send many different settings.
const maxEmptyKeys = 64

func (s *idleSet[C]) len() int { return len(s.clean) + s.ndirty }

func (s *idleSet[C]) push(pc *Pooled[C]) {
	if pc.setting == nil {
		s.clean = append(s.clean, pc)
		return
	}
	if s.dirty == nil {
		s.dirty = make(map[string][]*Pooled[C])
	}
	k := pc.setting.Query
	s.dirty[k] = append(s.dirty[k], pc)
	s.ndirty++
}

// popExact pops a connection carrying exactly setting (nil: a clean one).
func (s *idleSet[C]) popExact(setting *Setting) *Pooled[C] {
	if setting == nil {
		return s.popClean()
	}
	if s.ndirty == 0 {
		return nil
	}
	return s.popKey(setting.Query)
}

// popOther pops a connection that can be turned into one carrying setting: for a settings
// request a clean one first (only Apply needed), then one with other settings (Reset too).
func (s *idleSet[C]) popOther(setting *Setting) *Pooled[C] {
	if setting != nil {
		if pc := s.popClean(); pc != nil {
			return pc
		}
	}
	return s.popAnyDirty()
}

func (s *idleSet[C]) popClean() *Pooled[C] {
	n := len(s.clean)
	if n == 0 {
		return nil
	}
	pc := s.clean[n-1]
	s.clean[n-1] = nil
	s.clean = s.clean[:n-1]
	return pc
}

func (s *idleSet[C]) popKey(k string) *Pooled[C] {
	l := s.dirty[k]
	n := len(l)
	if n == 0 {
		return nil
	}
	pc := l[n-1]
	l[n-1] = nil
	if n == 1 && len(s.dirty) > maxEmptyKeys {
		delete(s.dirty, k)
	} else {
		s.dirty[k] = l[:n-1]
	}
	s.ndirty--
	return pc
}

func (s *idleSet[C]) popAnyDirty() *Pooled[C] {
	if s.ndirty == 0 {
		return nil
	}
	for k, l := range s.dirty {
		if len(l) > 0 {
			return s.popKey(k)
		}
	}
	return nil
}

// popVictim pops the connection to close first when the pool shrinks: one with settings
// (least likely to be reused), else the least recently used clean one.
func (s *idleSet[C]) popVictim() *Pooled[C] {
	if pc := s.popAnyDirty(); pc != nil {
		return pc
	}
	if len(s.clean) == 0 {
		return nil
	}
	pc := s.clean[0]
	n := copy(s.clean, s.clean[1:])
	s.clean[n] = nil
	s.clean = s.clean[:n]
	return pc
}

// removeIf removes the connections for which drop is true, appending them to out.
func (s *idleSet[C]) removeIf(drop func(*Pooled[C]) bool, out []*Pooled[C]) []*Pooled[C] {
	filter := func(l []*Pooled[C]) []*Pooled[C] {
		kept := l[:0]
		for _, pc := range l {
			if drop(pc) {
				out = append(out, pc)
			} else {
				kept = append(kept, pc)
			}
		}
		clear(l[len(kept):])
		return kept
	}
	s.clean = filter(s.clean)
	for k, l := range s.dirty {
		before := len(l)
		l = filter(l)
		s.ndirty -= before - len(l)
		if len(l) == 0 {
			delete(s.dirty, k)
		} else {
			s.dirty[k] = l
		}
	}
	return out
}

// drain removes every connection, appending them to out.
func (s *idleSet[C]) drain(out []*Pooled[C]) []*Pooled[C] {
	return s.removeIf(func(*Pooled[C]) bool { return true }, out)
}
