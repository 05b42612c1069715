package tabletserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLiveQueriesRegistry(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type op struct {
		kind string // add, remove, terminate
		id   uint32
		at   int  // add: start second
		want bool // remove: terminated; terminate: found
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want []uint32 // listed connection ids, oldest first
	}{
		{name: "empty", want: nil},
		{name: "oldest first across shards", ops: []op{{kind: "add", id: 7, at: 3}, {kind: "add", id: 39, at: 1}, {kind: "add", id: 8, at: 2}},
			want: []uint32{39, 8, 7}},
		{name: "same start ordered by id", ops: []op{{kind: "add", id: 5, at: 1}, {kind: "add", id: 4, at: 1}}, want: []uint32{4, 5}},
		{name: "remove", ops: []op{{kind: "add", id: 1, at: 1}, {kind: "add", id: 2, at: 2}, {kind: "remove", id: 1, want: false}},
			want: []uint32{2}},
		{name: "remove unknown is harmless", ops: []op{{kind: "remove", id: 9, want: false}}, want: nil},
		{name: "terminate unknown refused", ops: []op{{kind: "add", id: 1, at: 1}, {kind: "terminate", id: 2, want: false},
			{kind: "remove", id: 1, want: false}}, want: nil},
		{name: "terminate then remove reports it", ops: []op{{kind: "add", id: 1, at: 1}, {kind: "terminate", id: 1, want: true},
			{kind: "remove", id: 1, want: true}}, want: nil},
		{name: "terminated stays listed until it returns", ops: []op{{kind: "add", id: 1, at: 1}, {kind: "terminate", id: 1, want: true}},
			want: []uint32{1}},
		{name: "terminate after remove refused", ops: []op{{kind: "add", id: 1, at: 1}, {kind: "remove", id: 1, want: false},
			{kind: "terminate", id: 1, want: false}}, want: nil},
		// The connection's next statement starts unmarked: a mark never outlives its statement.
		{name: "next statement on the connection is not terminated", ops: []op{{kind: "add", id: 1, at: 1},
			{kind: "terminate", id: 1, want: true}, {kind: "remove", id: 1, want: true}, {kind: "add", id: 1, at: 2},
			{kind: "remove", id: 1, want: false}}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l liveQueries
			for _, o := range tc.ops {
				switch o.kind {
				case "add":
					l.add(liveQuery{connID: o.id, caller: "alice", sql: "select sleep(1)", start: at(o.at)})
				case "remove":
					if got := l.remove(o.id); got != o.want {
						t.Fatalf("remove(%d) = %v, want %v", o.id, got, o.want)
					}
				case "terminate":
					if got := l.terminate(o.id); got != o.want {
						t.Fatalf("terminate(%d) = %v, want %v", o.id, got, o.want)
					}
				}
			}
			var got []uint32
			for _, q := range l.list() {
				got = append(got, q.connID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("list %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("list %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestLiveQueriesHTTP(t *testing.T) {
	s := newTestServer(t, &fakeProber{})
	now := time.Date(2024, 5, 1, 12, 0, 10, 0, time.UTC)
	s.exec.now = func() time.Time { return now }
	s.exec.live.add(liveQuery{connID: 12, caller: "alice", sql: "select '<script>x</script>' from t", start: now.Add(-4 * time.Second)})
	s.exec.live.add(liveQuery{connID: 11, caller: "bob", sql: "select " + strings.Repeat("x", 3000), start: now.Add(-9 * time.Second),
		streaming: true})
	serve := func(h http.HandlerFunc, method, target string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec
	}

	for _, how := range [][]string{{"/livequeryz?format=json"}, {"/livequeryz/", "Accept", "application/json"}} {
		rec := serve(s.ServeLiveQueries, "GET", how[0], how[1:]...)
		var got []liveQueryJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 2 {
			t.Fatalf("%v: %v %s", how, err, rec.Body)
		}
		if got[0].ConnID != 11 || got[0].DurationSeconds != 9 || !got[0].Streaming || !strings.HasSuffix(got[0].SQL, "[TRUNCATED]") ||
			got[1].ConnID != 12 || got[1].Caller != "alice" || got[1].Start != "2024-05-01T12:00:06Z" {
			t.Errorf("%v: %+v", how, got)
		}
	}
	html := serve(s.ServeLiveQueries, "GET", "/livequeryz").Body.String()
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") ||
		!strings.Contains(html, `action="/livequeryz/terminate?connID=12"`) {
		t.Errorf("HTML page not escaped or without kill form:\n%s", html)
	}

	// Refusals never reach MySQL: bad or missing id, unknown id, wrong method.
	for _, tc := range []struct {
		method, target string
		code           int
		body           string
	}{
		{"POST", "/livequeryz/terminate", 400, "connID"},
		{"POST", "/livequeryz/terminate?connID=abc", 400, "connID"},
		{"GET", "/livequeryz/terminate?connID=-1", 400, "connID"},
		{"POST", "/livequeryz/terminate?connID=4294967296", 400, "connID"},
		{"POST", "/livequeryz/terminate?connID=13", 404, "no running query on connection 13"},
		{"POST", "/livequeryz/terminate?connID=13&format=json", 404, `"error"`},
		{"DELETE", "/livequeryz/terminate?connID=12", 405, "POST"},
	} {
		rec := serve(s.ServeTerminate, tc.method, tc.target)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.target, rec.Code, rec.Body, tc.code, tc.body)
		}
	}
	if t11, t12 := s.exec.live.remove(11), s.exec.live.remove(12); t11 || t12 {
		t.Error("a refused terminate marked a query")
	}
}

// BenchmarkLiveQueriesAddRemove is the per-statement cost of /livequeryz on the hot path
// (budget: well under 300 ns, no allocation).
func BenchmarkLiveQueriesAddRemove(b *testing.B) {
	var l liveQueries
	var next atomic.Uint32
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := next.Add(1) // per goroutine, like distinct connections
		for pb.Next() {
			l.add(liveQuery{connID: id, caller: "alice", sql: "select 1", start: start})
			l.remove(id)
		}
	})
}

func BenchmarkLiveQueriesAddRemoveSerial(b *testing.B) {
	var l liveQueries
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := uint32(i % 64)
		l.add(liveQuery{connID: id, caller: "alice", sql: "select 1", start: time.Now()})
		l.remove(id)
	}
}
