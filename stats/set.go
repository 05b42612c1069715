// Package stats provides Vitess-shaped statistics variables (counters, gauges, timing
// histograms, rates) and publishes them twice: on /debug/vars as expvar JSON under vttablet's
// variable names and shapes, and as Prometheus metrics under the names Vitess's Prometheus
// backend derives from them (namespace_snake_case, e.g. QueryErrorCounts →
// vttablet_query_error_counts). A Set is one tablet's variables: nothing here is global.
package stats

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Var is one published variable. Only this package's types implement it.
type Var interface {
	// appendJSON appends the expvar value; ok is false when the variable has no value now
	// (an optional gauge whose source cannot measure): it is then left out.
	appendJSON(b []byte) (_ []byte, ok bool)
	// collector is the variable's Prometheus form under fqName, or nil when Vitess does not
	// export it to Prometheus (strings, rates).
	collector(fqName, help string) promVar
}

// sampler is a variable that changes only when sampled (Rates).
type sampler interface{ sample(now time.Time) }

type promVar interface {
	collect(ch chan<- prometheus.Metric)
}

type entry struct {
	v    Var
	prom promVar
}

// Set holds one tablet's published variables. It is a prometheus.Collector (register it on
// the tablet's registry) and an http.Handler for /debug/vars. Safe for concurrent use.
type Set struct {
	namespace string

	mu       sync.RWMutex
	vars     map[string]entry
	names    []string // sorted, for the JSON output
	samplers []sampler
}

// NewSet returns an empty set whose Prometheus names start with namespace ("vttablet").
func NewSet(namespace string) *Set {
	return &Set{namespace: namespace, vars: map[string]entry{}}
}

var varName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Publish adds v under name. A name must be a Go-style identifier and be published once;
// the error names the problem.
func (s *Set) Publish(name, help string, v Var) error {
	if !varName.MatchString(name) {
		return fmt.Errorf("stats: variable name %q: want letters, digits and underscores, starting with a letter", name)
	}
	if v == nil {
		return fmt.Errorf("stats: variable %s: nil", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.vars[name]; dup {
		return fmt.Errorf("stats: variable %s is already published", name)
	}
	s.vars[name] = entry{v: v, prom: v.collector(PromName(s.namespace, name), help)}
	i, _ := slices.BinarySearch(s.names, name)
	s.names = slices.Insert(s.names, i, name)
	if sm, ok := v.(sampler); ok {
		s.samplers = append(s.samplers, sm)
	}
	return nil
}

// Names lists the published variables, sorted.
func (s *Set) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.names)
}

// Sample takes one sample of every Rates variable. The set's owner calls it on a ticker;
// Vitess samples every 5 seconds.
func (s *Set) Sample(now time.Time) {
	s.mu.RLock()
	sm := slices.Clone(s.samplers)
	s.mu.RUnlock()
	for _, r := range sm {
		r.sample(now)
	}
}

// ServeHTTP writes /debug/vars as Go's expvar handler does (which vttablet serves): one
// object, keys sorted, one variable per line, plus expvar's own cmdline and memstats.
func (s *Set) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(s.AppendJSON(nil))
}

// AppendJSON appends the /debug/vars document.
func (s *Set) AppendJSON(b []byte) []byte {
	s.mu.RLock()
	names := slices.Clone(s.names)
	vars := make([]Var, len(names))
	for i, n := range names {
		vars[i] = s.vars[n].v
	}
	s.mu.RUnlock()
	extra := expvarBuiltins()
	all := slices.Clone(names)
	for n := range extra {
		if _, taken := s.vars[n]; !taken {
			all = append(all, n)
		}
	}
	slices.Sort(all)
	b = append(b, "{\n"...)
	first := true
	for _, n := range all {
		mark := len(b)
		if !first {
			b = append(b, ",\n"...)
		}
		b = appendQuoted(b, n)
		b = append(b, ": "...)
		ok := true
		if i, found := slices.BinarySearch(names, n); found {
			b, ok = vars[i].appendJSON(b)
		} else {
			b = append(b, extra[n]...)
		}
		if !ok {
			b = b[:mark]
			continue
		}
		first = false
	}
	return append(b, "\n}\n"...)
}

// expvarBuiltins are the two variables Go's expvar package always publishes.
func expvarBuiltins() map[string][]byte {
	cmd, _ := json.Marshal(os.Args)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mem, _ := json.Marshal(ms)
	return map[string][]byte{"cmdline": cmd, "memstats": mem}
}

// Describe sends nothing: the set is an unchecked collector, since variables may be
// published after it is registered. Names never collide with other collectors' because
// they all carry the set's namespace.
func (s *Set) Describe(chan<- *prometheus.Desc) {}

// Collect sends every variable's current Prometheus samples.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	proms := make([]promVar, 0, len(s.names))
	for _, n := range s.names {
		if p := s.vars[n].prom; p != nil {
			proms = append(proms, p)
		}
	}
	s.mu.RUnlock()
	for _, p := range proms {
		p.collect(ch)
	}
}

// Value returns one variable's JSON value (tests, the status page), or false when it is not
// published or has no value now.
func (s *Set) Value(name string) (json.RawMessage, bool) {
	s.mu.RLock()
	e, ok := s.vars[name]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	b, ok := e.v.appendJSON(nil)
	return json.RawMessage(b), ok
}

func appendQuoted(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
