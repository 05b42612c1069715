package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/test/certtest"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// tlsMariaDB is a MariaDB serving TLS with a certificate from ca, whose vt_app and vt_dba
// accounts must use TLS (REQUIRE SSL): a connection in plain text is refused with 1045.
func tlsMariaDB(t *testing.T, ca *certtest.CA) *mariadbtest.Server {
	t.Helper()
	pair := ca.Server(t, "mariadb")
	db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: []string{
		"--ssl-ca=" + ca.CertFile, "--ssl-cert=" + pair.CertFile, "--ssl-key=" + pair.KeyFile}})
	var stmts []string
	for _, u := range []string{"vt_app", "vt_dba"} {
		for _, h := range []string{"%", "localhost"} {
			stmts = append(stmts, "ALTER USER '"+u+"'@'"+h+"' REQUIRE SSL")
		}
	}
	db.Exec(t, append(stmts, "CREATE DATABASE vt_commerce")...)
	return db
}

// TestMySQLTLS: the query pools (mysqlconn through go-mysql's handshake) and the control
// connections (go-sql-driver) both encrypt with --db-ssl-*; an unverifiable server or plain
// text to an account that requires TLS never serves.
func TestMySQLTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "mysql")
	other := certtest.NewCA(t, dir, "other")
	db := tlsMariaDB(t, ca)
	for i, tc := range []struct {
		name     string
		tls      dbconfig.TLSConfig
		appNoTLS bool
		serves   bool
		errno    uint16 // the MySQL error seen when it does not serve (0: a TLS failure)
	}{
		{name: "verify_identity against the CA", tls: dbconfig.TLSConfig{Mode: dbconfig.TLSVerifyIdentity, CA: ca.CertFile}, serves: true},
		{name: "CLIENT_SSL in --db-flags", tls: dbconfig.TLSConfig{Flags: dbconfig.ClientSSLFlag, CA: ca.CertFile}, serves: true},
		{name: "required, unverified", tls: dbconfig.TLSConfig{Mode: dbconfig.TLSRequired}, serves: true},
		{name: "verify_ca with the wrong CA", tls: dbconfig.TLSConfig{Mode: dbconfig.TLSVerifyCA, CA: other.CertFile}},
		{name: "verify_identity naming another server", tls: dbconfig.TLSConfig{Mode: dbconfig.TLSVerifyIdentity, CA: ca.CertFile, ServerName: "db.elsewhere"}},
		{name: "plain text to accounts requiring TLS", tls: dbconfig.TLSConfig{}, errno: 1045},
		{name: "--db-app-use-ssl=false", tls: dbconfig.TLSConfig{Mode: dbconfig.TLSVerifyIdentity, CA: ca.CertFile}, appNoTLS: true, errno: 1045},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tabletConfig(e, db, tabletOpts{uid: uint32(300 + i), initType: topodatapb.TabletType_PRIMARY})
			cfg.DB.TLS = tc.tls
			app := cfg.DB.Users[dbconfig.App]
			app.NoTLS = tc.appNoTLS
			cfg.DB.Users[dbconfig.App] = app
			r := startTablet(t, cfg)
			q := &qt{running: r, db: db, target: &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}}
			if tc.serves {
				// Serving needs the probe (go-sql-driver, as vt_dba, REQUIRE SSL) to pass.
				r.health(t).until(20*time.Second, "serving", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
				res := q.mustExec(t, 0, "show session status like 'Ssl_version'", nil)
				if v := values(res); len(v) != 1 || !strings.HasPrefix(v[0][1], "TLSv1.") {
					t.Fatalf("the query connection (mysqlconn, as vt_app) is not encrypted: %v", v)
				}
				return
			}
			// Not serving, and the reason says why: MySQL's errno when it refused plain text
			// (vtgate and operators read vttablet's "(errno N)").
			eventually(t, 20*time.Second, "MySQL probed", func() bool { return !r.t.QueryService().Status().MySQL.CheckedAt.IsZero() })
			st := r.t.QueryService().Status()
			if st.Serving || st.HealthError == "" {
				t.Fatalf("serving %v (%q) without a usable MySQL connection", st.Serving, st.HealthError)
			}
			if tc.errno != 0 {
				// The control connection's error (vt_dba), or the app user's problem.
				num, _, ok := rpcerr.Errno(st.MySQL.Err)
				if !ok && st.MySQL.Err == nil && strings.Contains(st.MySQL.AppProblem, fmt.Sprintf("(errno %d)", tc.errno)) {
					num, ok = tc.errno, true
				}
				if !ok || num != tc.errno {
					t.Fatalf("not serving because %q (%v), want MySQL's errno %d", st.HealthError, st.MySQL.Err, tc.errno)
				}
			}
			if _, err := q.exec(t, 0, "select 1", nil); err == nil {
				t.Fatal("a query went through")
			}
		})
	}
}

// startSecureTablet starts a primary with sec on a fresh MariaDB; the harness's own client
// is plain text, so callers dial with their own credentials.
func startSecureTablet(t *testing.T, sec tablet.SecurityConfig) (*tablet.Tablet, *mariadbtest.Server) {
	t.Helper()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	cfg := tabletConfig(e, db, tabletOpts{uid: 400, initType: topodatapb.TabletType_PRIMARY})
	cfg.Security = sec
	tb, err := tablet.New(cfg, tablet.Deps{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Shutdown(context.Background()) })
	eventually(t, 20*time.Second, "serving", func() bool { return tb.QueryService().Status().Serving })
	return tb, db
}

func dialQS(t *testing.T, addr string, opts ...grpc.DialOption) queryservicepb.QueryClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return queryservicepb.NewQueryClient(conn)
}

var primaryTarget = &querypb.Target{Keyspace: "commerce", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}

func selectOne(qs queryservicepb.QueryClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := qs.Execute(ctx, &querypb.ExecuteRequest{Target: primaryTarget, Query: &querypb.BoundQuery{Sql: "select 1"}})
	return err
}

// firstHealth opens StreamHealth and returns the first record's error.
func firstHealth(qs queryservicepb.QueryClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := qs.StreamHealth(ctx, &querypb.StreamHealthRequest{})
	if err != nil {
		return err
	}
	_, err = st.Recv()
	return err
}

// TestGRPCMutualTLS: a tablet with --grpc-cert/key/ca and --grpc-auth-mode mtls serves the
// query service (unary and streaming) to an allowed client certificate only, and serves a new
// certificate without a restart.
func TestGRPCMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "grpc")
	next := certtest.NewCA(t, dir, "next")
	certFile, keyFile := filepath.Join(dir, "tablet-cert.pem"), filepath.Join(dir, "tablet-key.pem")
	install := func(p certtest.Pair) {
		for _, f := range [][2]string{{p.CertFile, certFile}, {p.KeyFile, keyFile}} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1]+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(f[1]+".tmp", f[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(ca.Server(t, "tablet"))
	// Client certificates from either CA are accepted (the client CA file holds both).
	clientCAs := filepath.Join(dir, "clients.pem")
	a, _ := os.ReadFile(ca.CertFile)
	b, _ := os.ReadFile(next.CertFile)
	if err := os.WriteFile(clientCAs, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, _ := startSecureTablet(t, tablet.SecurityConfig{
		GRPCTLS:  grpcserver.TLSConfig{Cert: certFile, Key: keyFile, CA: clientCAs},
		GRPCAuth: grpcserver.AuthConfig{Mode: grpcserver.AuthMTLS, MTLSAllowedSubstrings: "CN=vtgate:CN=vtctld"},
	})
	addr := tb.GRPCAddr()
	withCert := func(trust *certtest.CA, pair certtest.Pair) grpc.DialOption {
		return grpc.WithTransportCredentials(credentials.NewTLS(trust.ClientTLS(t, pair)))
	}
	vtgate := dialQS(t, addr, withCert(ca, ca.Client(t, "vtgate")))
	for _, tc := range []struct {
		name string
		qs   queryservicepb.QueryClient
		want codes.Code
	}{
		{"allowed certificate", vtgate, codes.OK},
		{"no certificate", dialQS(t, addr, withCert(ca, certtest.Pair{})), codes.Unavailable},
		{"certificate not allowed by --grpc-auth-mtls-allowed-substrings", dialQS(t, addr, withCert(ca, ca.Client(t, "intruder"))), codes.Unauthenticated},
		{"certificate from an unknown CA", dialQS(t, addr, withCert(ca, certtest.NewCA(t, dir, "rogue").Client(t, "vtgate"))), codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for what, call := range map[string]func(queryservicepb.QueryClient) error{"Execute": selectOne, "StreamHealth": firstHealth} {
				if got := status.Code(call(tc.qs)); got != tc.want {
					t.Errorf("%s: %v, want %v", what, got, tc.want)
				}
			}
		})
	}
	// Certificate rotation: the tablet serves the next CA's certificate once the files change.
	install(next.Server(t, "tablet"))
	rotated := withCert(next, next.Client(t, "vtctld"))
	eventually(t, 15*time.Second, "the rotated certificate is served", func() bool {
		return selectOne(dialQS(t, addr, rotated)) == nil
	})
	if err := selectOne(vtgate); err != nil {
		t.Fatalf("an open connection broke on rotation: %v", err)
	}
}

// TestGRPCStaticAuth: --grpc-auth-mode static against real calls; a new password file is
// taken on ReloadSecurity (SIGHUP).
func TestGRPCStaticAuth(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(file, []byte(`[{"Username": "vtgate", "Password": "first-pw"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	tb, _ := startSecureTablet(t, tablet.SecurityConfig{GRPCAuth: grpcserver.AuthConfig{Mode: grpcserver.AuthStatic, StaticPasswordFile: file}})
	call := func(user, pw string) vtrpcpb.Code {
		conn, err := grpc.NewClient(tb.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if user != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "username", user, "password", pw)
		}
		_, err = queryservicepb.NewQueryClient(conn).Execute(ctx, &querypb.ExecuteRequest{Target: primaryTarget, Query: &querypb.BoundQuery{Sql: "select 1"}})
		return rpcerr.Code(err)
	}
	for _, tc := range []struct {
		user, pw string
		want     vtrpcpb.Code
	}{
		{"vtgate", "first-pw", vtrpcpb.Code_OK},
		{"", "", vtrpcpb.Code_UNAUTHENTICATED},
		{"vtgate", "wrong", vtrpcpb.Code_PERMISSION_DENIED},
	} {
		if got := call(tc.user, tc.pw); got != tc.want {
			t.Errorf("%q/%q: %v, want %v", tc.user, tc.pw, got, tc.want)
		}
	}
	if err := os.WriteFile(file, []byte(`[{"Username": "vtgate", "Password": "second-pw"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tb.ReloadSecurity(); err != nil {
		t.Fatal(err)
	}
	if got := call("vtgate", "second-pw"); got != vtrpcpb.Code_OK {
		t.Fatalf("after reload the new password: %v", got)
	}
	if got := call("vtgate", "first-pw"); got != vtrpcpb.Code_PERMISSION_DENIED {
		t.Fatalf("after reload the old password: %v", got)
	}
}

// post sends a form POST with browser headers hdr; it does not follow redirects.
func post(t *testing.T, u string, form url.Values, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	readBody(t, resp, err)
	return resp.StatusCode
}

// TestHTTPGuard: through a real tablet, a cross-site form POST to /livequeryz/terminate
// cannot kill a query, a GET cannot either, a same-origin POST can; read-only and deny-all
// refuse what Vitess's policies refuse; pprof is off unless enabled.
func TestHTTPGuard(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	base := "http://" + q.t.HTTPAddr()
	done := make(chan error, 1)
	go func() {
		_, err := q.exec(t, 0, "select sleep(30) /* guard */", nil)
		done <- err
	}()
	e := waitLive(t, q, "select sleep(30) /* guard */")
	form := url.Values{"connID": {itoa(int(e.ConnID))}}
	if code := post(t, base+"/livequeryz/terminate", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", code)
	}
	if code, _ := httpGet(t, base+"/livequeryz/terminate?connID="+itoa(int(e.ConnID))); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET terminate: %d, want 405", code)
	}
	for _, l := range liveQueries(t, q) { // still running
		if l.ConnID == e.ConnID {
			goto running
		}
	}
	t.Fatal("the query was killed by a refused request")
running:
	if code := post(t, base+"/livequeryz/terminate", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}); code != http.StatusSeeOther {
		t.Fatalf("same-origin POST: %d, want 303", code)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the terminated query succeeded")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the query still runs 15s after a same-origin terminate")
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("pprof without --pprof-http: %d, want 404", code)
	}

	for _, tc := range []struct {
		policy string
		want   map[string]int
	}{
		{httpserver.PolicyReadOnly, map[string]int{"/debug/status": 200, "/debug/health": 200, "/healthz": 200, "POST /livequeryz/terminate": 403, "/debug/pprof/": 200}},
		{httpserver.PolicyDenyAll, map[string]int{"/debug/status": 403, "/debug/health": 403, "/healthz": 200, "POST /livequeryz/terminate": 403, "/debug/pprof/": 403, "/metrics": 403}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			tb, _ := startSecureTablet(t, tablet.SecurityConfig{HTTPPolicy: tc.policy, Pprof: true})
			for page, want := range tc.want {
				var got int
				if p, ok := strings.CutPrefix(page, "POST "); ok {
					got = post(t, "http://"+tb.HTTPAddr()+p, url.Values{"connID": {"1"}}, nil)
				} else {
					got, _ = httpGet(t, "http://"+tb.HTTPAddr()+page)
				}
				if got != want {
					t.Errorf("%s: %d, want %d", page, got, want)
				}
			}
		})
	}
}
