package httpserver

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strings"

	"go.uber.org/zap"
)

// Security policies (--security-policy), Vitess's built-in ones.
const (
	PolicyAllowAll = ""          // anyone may do anything (Vitess's default)
	PolicyDenyAll  = "deny-all"  // every page but the liveness check is refused
	PolicyReadOnly = "read-only" // debugging and monitoring pages only; admin actions refused
)

// Roles a page requires, as Vitess's acl package names them.
const (
	RolePublic     = ""           // no check at all (liveness)
	RoleMonitoring = "monitoring" // health, metrics, variables
	RoleDebugging  = "debugging"  // status and debug pages, pprof
	RoleAdmin      = "admin"      // actions that change state
)

// Security guards every endpoint of the handler NewHandler returns.
type Security struct {
	// Policy is --security-policy: PolicyAllowAll, PolicyDenyAll or PolicyReadOnly.
	Policy string
	// Pprof serves /debug/pprof/ (--pprof-http, off by default as in Vitess). The command
	// line it shows has every password flag's value redacted.
	Pprof bool
	// Mask, when set, is applied to every text response (HTML, JSON, plain text): it
	// replaces secrets it knows by '*' of the same length. Binary responses (profiles) pass
	// untouched. The pages never show a password to begin with; this is the second line.
	Mask func([]byte) []byte
	// SecretForms returns the byte strings Mask replaces, so that a secret split across
	// two writes of a streamed page is still caught. nil with Mask set: only whole writes.
	SecretForms func() [][]byte
}

// Validate reports a policy Vitess does not know.
func (s Security) Validate() error {
	switch s.Policy {
	case PolicyAllowAll, PolicyDenyAll, PolicyReadOnly:
		return nil
	}
	return fmt.Errorf("--security-policy %q: tabletd has Vitess's built-in policies only: deny-all, read-only (empty: allow all)", s.Policy)
}

// SecuritySource is a Source that says how its pages are guarded; a Source that is not one
// gets the zero Security (allow all, pprof off, state changes by POST from the same origin).
type SecuritySource interface {
	HTTPSecurity() Security
}

// page is how one path is guarded.
type page struct {
	role string
	// mutating pages change state: POST only, never from another origin.
	mutating bool
	// post allows POST on a read-only page (pprof's symbol lookup is a POST).
	post  bool
	pprof bool
}

// guardOf classifies a request path. A path not listed is a debugging page: a new page is
// guarded until someone decides otherwise.
func guardOf(path string) page {
	switch path {
	case "/", "/healthz":
		return page{role: RolePublic}
	case "/debug/health", "/metrics", "/debug/vars":
		return page{role: RoleMonitoring}
	case "/livequeryz/terminate":
		return page{role: RoleAdmin, mutating: true}
	case "/debug/pprof/symbol":
		return page{role: RoleDebugging, post: true, pprof: true}
	}
	if strings.HasPrefix(path, "/debug/pprof/") || path == "/debug/pprof" {
		return page{role: RoleDebugging, pprof: true}
	}
	return page{role: RoleDebugging}
}

// allowed applies the policy to a role, with Vitess's error texts.
func allowed(policy, role string) error {
	if role == RolePublic {
		return nil
	}
	switch policy {
	case PolicyAllowAll:
		return nil
	case PolicyReadOnly:
		if role == RoleDebugging || role == RoleMonitoring {
			return nil
		}
		return errors.New("not allowed: read-only security-policy enforced")
	}
	// deny-all, and any policy Validate would refuse: fail closed.
	return errors.New("not allowed: deny-all security-policy enforced")
}

// secure wraps the mux with the guard: the policy, the method and origin checks of
// state-changing pages, pprof gating, the redacted command line, and the mask.
func secure(h http.Handler, src Source, log *zap.Logger) http.Handler {
	var sec Security
	if ss, ok := src.(SecuritySource); ok {
		sec = ss.HTTPSecurity()
	}
	// A browser's cross-site POST carries Sec-Fetch-Site (or an Origin that is not the
	// Host); curl and Go clients carry neither and are let through.
	cop := http.NewCrossOriginProtection()
	refuseCrossOrigin := func(w http.ResponseWriter, r *http.Request) {
		log.Warn("refused a cross-origin request to a state-changing page", zap.String("path", r.URL.Path),
			zap.String("origin", r.Header.Get("Origin")), zap.String("sec-fetch-site", r.Header.Get("Sec-Fetch-Site")))
		http.Error(w, "cross-origin request refused: this page changes state and only accepts requests from its own origin", http.StatusForbidden)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := guardOf(r.URL.Path)
		if err := allowed(sec.Policy, p.role); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "Access denied: %v\n", err)
			return
		}
		if p.pprof && !sec.Pprof {
			http.Error(w, "pprof is off: start tabletd with --pprof-http to serve /debug/pprof/", http.StatusNotFound)
			return
		}
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			if p.mutating {
				w.Header().Set("Allow", http.MethodPost)
				http.Error(w, r.URL.Path+" changes state: use POST (a form on the page, or curl -X POST)", http.StatusMethodNotAllowed)
				return
			}
		case r.Method == http.MethodPost && (p.mutating || p.post):
			if err := cop.Check(r); err != nil {
				refuseCrossOrigin(w, r)
				return
			}
		default:
			allow := "GET, HEAD"
			if p.mutating {
				allow = http.MethodPost
			} else if p.post {
				allow = "GET, HEAD, POST"
			}
			w.Header().Set("Allow", allow)
			http.Error(w, "method "+r.Method+" not allowed on "+r.URL.Path, http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/debug/pprof/cmdline" {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(maskWith(sec.Mask, []byte(strings.Join(RedactArgs(os.Args), "\x00"))))
			return
		}
		if sec.Mask == nil {
			h.ServeHTTP(w, r)
			return
		}
		// A compressed body cannot be masked: ask the handlers (promhttp) for plain text.
		r.Header.Del("Accept-Encoding")
		mw := &maskingWriter{ResponseWriter: w, mask: sec.Mask}
		if sec.SecretForms != nil {
			mw.forms = sec.SecretForms()
		}
		defer mw.finish()
		h.ServeHTTP(mw, r)
	})
}

func maskWith(mask func([]byte) []byte, b []byte) []byte {
	if mask == nil {
		return b
	}
	return mask(b)
}

// maskingWriter applies the mask to text responses as they are written. To catch a secret
// split across writes it holds back the end of what was written when that end could begin
// a secret, until the next write, a flush or the end of the response.
type maskingWriter struct {
	http.ResponseWriter
	mask    func([]byte) []byte
	forms   [][]byte
	decided bool
	binary  bool // not text: passed through untouched
	pending []byte
}

func (m *maskingWriter) decide() {
	if m.decided {
		return
	}
	m.decided = true
	if m.Header().Get("Content-Encoding") != "" {
		// Compressed anyway: pass it, but never a text body the mask could not read.
		m.binary = true
		return
	}
	ct := m.Header().Get("Content-Type")
	if ct == "" {
		return // sniffed later by net/http from what we write: treat as text
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return
	}
	m.binary = !(strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "json") ||
		strings.HasSuffix(mt, "xml") || mt == "application/javascript")
}

func (m *maskingWriter) WriteHeader(code int) {
	m.decide()
	m.ResponseWriter.WriteHeader(code)
}

func (m *maskingWriter) Write(p []byte) (int, error) {
	m.decide()
	if m.binary {
		return m.ResponseWriter.Write(p)
	}
	m.pending = m.mask(append(m.pending, p...))
	keep := heldBack(m.pending, m.forms)
	if out := m.pending[:len(m.pending)-keep]; len(out) > 0 {
		if _, err := m.ResponseWriter.Write(out); err != nil {
			return 0, err
		}
	}
	m.pending = append(m.pending[:0], m.pending[len(m.pending)-keep:]...)
	return len(p), nil
}

// Flush sends what can be sent (a possible secret's beginning stays held) and flushes.
func (m *maskingWriter) Flush() {
	if f, ok := m.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (m *maskingWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (m *maskingWriter) finish() {
	if len(m.pending) > 0 {
		_, _ = m.ResponseWriter.Write(m.pending)
		m.pending = nil
	}
}

// heldBack is the length of the longest end of b that is the beginning (not the whole) of
// one of forms.
func heldBack(b []byte, forms [][]byte) int {
	best := 0
	for _, f := range forms {
		for n := min(len(f)-1, len(b)); n > best; n-- {
			if string(b[len(b)-n:]) == string(f[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// RedactArgs returns a copy of a command line with the value of every flag that carries a
// secret replaced by "REDACTED": --db-app-password=x, --db-app-password x, and the _
// spelling alike. A flag carries a secret when its name ends in "password", "secret" or
// "token". The program name (args[0]) is kept.
func RedactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !SecretFlag(name) {
			continue
		}
		if hasValue {
			out[i] = a[:strings.Index(a, "=")+1] + "REDACTED"
		} else if i+1 < len(out) {
			out[i+1] = "REDACTED"
			i++
		}
	}
	return out
}

// SecretFlag reports whether the flag named name (without dashes, either spelling) carries
// a secret value.
func SecretFlag(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return strings.HasSuffix(n, "password") || strings.HasSuffix(n, "secret") || strings.HasSuffix(n, "token")
}
