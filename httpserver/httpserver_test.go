package httpserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

type fakeSource struct {
	page    Page
	serving bool
}

func (f fakeSource) StatusPage() Page       { return f.page }
func (f fakeSource) Health() (bool, string) { return f.serving, "MySQL is unreachable" }

func testPage() Page {
	now := chartEnd
	c := chartWith(10, 20, 30)
	return Page{Alias: "zone1-0000000100", Keyspace: "commerce", Shard: "0", TabletType: "PRIMARY",
		State: "SERVING", Serving: true, Started: now.Add(-time.Hour), Now: now,
		Observed: Observed{QPS: 30, Span: 15 * time.Minute, SlowThreshold: 100 * time.Millisecond,
			Charts: []Chart{c},
			HealthHistory: []HealthEvent{
				{At: now.Add(-time.Minute), State: "SERVING", Serving: true, TabletType: "PRIMARY"},
				{At: now.Add(-2 * time.Minute), State: "NOT_SERVING", TabletType: "REPLICA", Reason: "replication lag unknown: <stopped>"},
			},
			Errors:      []ErrorCount{{Code: "CLUSTER_EVENT", Count: 3}, {Code: "ALREADY_EXISTS", Count: 1}},
			SlowQueries: []SlowQuery{{At: now, Took: 1500 * time.Millisecond, SQL: "select sleep(1.5) from <t>", Plan: "Select", Caller: "app", Rows: 1}},
		}}
}

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), string(b)
}

// TestStatusPage: the history sections render with their data, escaped, with the charts
// inline and nothing fetched from elsewhere (the page works offline: no script, no
// external stylesheet, image or font).
func TestStatusPage(t *testing.T) {
	h := NewHandler(fakeSource{page: testPage(), serving: true}, prometheus.NewRegistry(), zap.NewNop(), nil)
	code, hdr, body := get(t, h, "/debug/status")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/debug/status: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		"<h2>Last 15m</h2>", "<svg class=\"chart\"", "<title>Queries &lt;per&gt; second</title>", "30.0 queries/s",
		"<h2>Health history</h2>", "replication lag unknown: &lt;stopped&gt;", "NOT_SERVING",
		"<h2>Errors by code</h2>", "<td>CLUSTER_EVENT</td><td>3</td>",
		"<h2>Slow queries (the last 1 over 100ms)</h2>", "select sleep(1.5) from &lt;t&gt;", "1.5s",
		`href="/debug/vars"`, `href="/queryz"`, `href="/debug/status_details"`, `href="/txlogz"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Index(body, "CLUSTER_EVENT") > strings.Index(body, "ALREADY_EXISTS") {
		t.Error("errors are not in the order given (largest first)")
	}
	if strings.Contains(body, "<script") {
		t.Error("the status page has a script")
	}
	if m := regexp.MustCompile(`(?i)(src|@import|url\()\s*=?\s*["']?https?:`).FindString(body); m != "" {
		t.Errorf("the status page loads something from elsewhere: %q", m)
	}
}

func TestStatusPageWithoutHistory(t *testing.T) {
	p := testPage()
	p.Observed = Observed{Span: 15 * time.Minute, SlowThreshold: 100 * time.Millisecond}
	_, _, body := get(t, NewHandler(fakeSource{page: p}, prometheus.NewRegistry(), zap.NewNop(), nil), "/debug/status")
	for _, want := range []string{"no transition yet", "no request failed since start", "none over 100ms since start"} {
		if !strings.Contains(body, want) {
			t.Errorf("empty history lacks %q", want)
		}
	}
}

func TestHealthEndpoints(t *testing.T) {
	for _, tt := range []struct {
		serving bool
		path    string
		code    int
	}{
		{true, "/debug/health", http.StatusOK},
		{false, "/debug/health", http.StatusInternalServerError},
		{false, "/healthz", http.StatusOK}, // liveness: the process answers
		{true, "/", http.StatusFound},
	} {
		h := NewHandler(fakeSource{page: testPage(), serving: tt.serving}, prometheus.NewRegistry(), zap.NewNop(), nil)
		if code, _, body := get(t, h, tt.path); code != tt.code {
			t.Errorf("%s serving=%v: %d %q, want %d", tt.path, tt.serving, code, body, tt.code)
		}
	}
}

func TestExtraPages(t *testing.T) {
	extra := map[string]http.HandlerFunc{"/queryz": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "queryz") }}
	h := NewHandler(fakeSource{page: testPage()}, prometheus.NewRegistry(), zap.NewNop(), extra)
	if code, _, body := get(t, h, "/queryz"); code != http.StatusOK || body != "queryz" {
		t.Errorf("/queryz: %d %q", code, body)
	}
}
