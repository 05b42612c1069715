package httpserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// securedSource is a Source with a Security.
type securedSource struct{ sec Security }

func (s securedSource) StatusPage() Page {
	return Page{Alias: "zone1-0000000100", State: "SERVING", Serving: true}
}
func (s securedSource) Health() (bool, string) { return true, "" }
func (s securedSource) HTTPSecurity() Security { return s.sec }

// securedHandler is NewHandler over a source with sec, plus /livequeryz/terminate and a page
// that writes a secret in pieces.
func securedHandler(sec Security) (http.Handler, *int) {
	terminated := new(int)
	extra := map[string]http.HandlerFunc{
		"/livequeryz/terminate": func(w http.ResponseWriter, r *http.Request) { *terminated++; _, _ = io.WriteString(w, "killed") },
		"/debug/leaky": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			for _, part := range []string{"user=vt_app password=hun", "ter", "22-secret", " end"} {
				_, _ = io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		},
		"/debug/binary": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "hunter22-secret")
		},
	}
	src := securedSource{sec: sec}
	return NewHandler(src, prometheus.NewRegistry(), zap.NewNop(), extra), terminated
}

func do(t *testing.T, h http.Handler, method, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestSecurityPolicy: each built-in policy against each kind of page, with Vitess's texts.
func TestSecurityPolicy(t *testing.T) {
	pages := []struct {
		method, path string
	}{
		{"GET", "/healthz"}, {"GET", "/debug/health"}, {"GET", "/metrics"},
		{"GET", "/debug/status"}, {"GET", "/debug/pprof/"}, {"POST", "/livequeryz/terminate"},
	}
	for _, tc := range []struct {
		policy string
		want   []int // per page above
	}{
		{PolicyAllowAll, []int{200, 200, 200, 200, 200, 200}},
		{PolicyReadOnly, []int{200, 200, 200, 200, 200, 403}},
		{PolicyDenyAll, []int{200, 403, 403, 403, 403, 403}},
	} {
		t.Run("policy "+tc.policy, func(t *testing.T) {
			h, terminated := securedHandler(Security{Policy: tc.policy, Pprof: true})
			for i, p := range pages {
				code, body := do(t, h, p.method, p.path, nil)
				if code != tc.want[i] {
					t.Errorf("%s %s: %d, want %d (%s)", p.method, p.path, code, tc.want[i], body)
				}
				if code == 403 && !strings.HasPrefix(body, "Access denied: not allowed: "+tc.policy+" security-policy enforced") {
					t.Errorf("%s: denial text %q is not Vitess's", p.path, body)
				}
			}
			if wantKills := map[string]int{PolicyAllowAll: 1}[tc.policy]; *terminated != wantKills {
				t.Errorf("terminate ran %d times, want %d", *terminated, wantKills)
			}
		})
	}
	if err := (Security{Policy: "allow-nobody"}).Validate(); err == nil {
		t.Fatal("an unknown policy was accepted")
	}
}

// TestStateChangingPages: /livequeryz/terminate only by POST, and never from another origin;
// read-only pages refuse POST (pprof's symbol lookup excepted).
func TestStateChangingPages(t *testing.T) {
	h, terminated := securedHandler(Security{Pprof: true})
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
		kills  int
	}{
		{"GET is refused", "GET", "/livequeryz/terminate?connID=1", nil, 405, 0},
		{"POST from curl or Go (no browser headers)", "POST", "/livequeryz/terminate?connID=1", nil, 200, 1},
		{"POST from the page itself", "POST", "/livequeryz/terminate?connID=1", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, 200, 1},
		{"cross-site form post", "POST", "/livequeryz/terminate?connID=1", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 403, 0},
		{"same-site but another origin", "POST", "/livequeryz/terminate?connID=1", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, 0},
		{"old browser: Origin differs from Host", "POST", "/livequeryz/terminate?connID=1", map[string]string{"Origin": "http://evil.example"}, 403, 0},
		{"PUT is refused", "PUT", "/livequeryz/terminate?connID=1", nil, 405, 0},
		{"POST to a read-only page", "POST", "/debug/status", nil, 405, 0},
		{"DELETE to a read-only page", "DELETE", "/metrics", nil, 405, 0},
		{"pprof symbol lookup by POST", "POST", "/debug/pprof/symbol", nil, 200, 0},
		{"pprof symbol lookup cross-site", "POST", "/debug/pprof/symbol", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := *terminated
			code, body := do(t, h, tc.method, tc.path, tc.hdr)
			if code != tc.want {
				t.Fatalf("%d, want %d: %s", code, tc.want, body)
			}
			if got := *terminated - before; got != tc.kills {
				t.Fatalf("terminate ran %d times, want %d", got, tc.kills)
			}
		})
	}
}

// TestPprofGating: pprof is off unless enabled; when on, its command line is redacted.
func TestPprofGating(t *testing.T) {
	off, _ := securedHandler(Security{})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if code, _ := do(t, off, "GET", p, nil); code != http.StatusNotFound {
			t.Fatalf("%s with pprof off: %d", p, code)
		}
	}
	saved := os.Args
	os.Args = []string{"tabletd", "--db-app-password", "hunter22-secret", "--db_dba_password=dba-secret-pw", "--port", "15000"}
	defer func() { os.Args = saved }()
	on, _ := securedHandler(Security{Pprof: true})
	code, body := do(t, on, "GET", "/debug/pprof/cmdline", nil)
	want := "tabletd\x00--db-app-password\x00REDACTED\x00--db_dba_password=REDACTED\x00--port\x0015000"
	if code != 200 || body != want {
		t.Fatalf("cmdline: %d %q, want %q", code, body, want)
	}
	if code, _ := do(t, on, "GET", "/debug/pprof/goroutine?debug=1", nil); code != 200 {
		t.Fatalf("pprof on: goroutine profile %d", code)
	}
}

// TestMaskedResponses: a secret in a text response is masked even when it is written in
// pieces and flushed between them; binary responses pass untouched.
func TestMaskedResponses(t *testing.T) {
	secrets := [][]byte{[]byte("hunter22-secret")}
	mask := func(b []byte) []byte {
		for _, s := range secrets {
			for i := bytes.Index(b, s); i >= 0; i = bytes.Index(b, s) {
				copy(b[i:], bytes.Repeat([]byte("*"), len(s)))
			}
		}
		return b
	}
	h, _ := securedHandler(Security{Mask: mask, SecretForms: func() [][]byte { return secrets }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/leaky")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "user=vt_app password=*************** end"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if _, body := do(t, h, "GET", "/debug/binary", nil); body != "hunter22-secret" {
		t.Fatalf("a binary response was altered: %q", body)
	}
}

func TestRedactArgs(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"tabletd", "--db-app-password", "x", "--port", "1"}, []string{"tabletd", "--db-app-password", "REDACTED", "--port", "1"}},
		{[]string{"vttablet", "-db_repl_password=y", "--db-app-user", "vt_app"}, []string{"vttablet", "-db_repl_password=REDACTED", "--db-app-user", "vt_app"}},
		{[]string{"tabletd", "--db-dba-password"}, []string{"tabletd", "--db-dba-password"}},
		{[]string{"tabletd", "--some-token", "t", "--", "--db-app-password", "z"}, []string{"tabletd", "--some-token", "REDACTED", "--", "--db-app-password", "z"}},
		{[]string{"tabletd", "--db-app-password", "--port"}, []string{"tabletd", "--db-app-password", "REDACTED"}},
	} {
		if got := RedactArgs(tc.in); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("RedactArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
