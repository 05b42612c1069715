package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/test/certtest"
)

// serveHealth serves gRPC's health service with tabletd's options plus extra; it returns
// the address.
func serveHealth(t *testing.T, extra ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(ServerOptions(zap.NewNop(), nil, DefaultTuning()), extra...)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// check calls Health.Check over a new connection with creds and the metadata kv.
func check(t *testing.T, addr string, creds credentials.TransportCredentials, kv ...string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func tlsCreds(c *tls.Config) credentials.TransportCredentials { return credentials.NewTLS(c) }

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "ca")
	other := certtest.NewCA(t, dir, "other")
	srvPair := ca.Server(t, "server")
	good := ca.Client(t, "vtgate")
	revoked := ca.Client(t, "revoked")
	stranger := other.Client(t, "vtgate")
	crl := ca.CRL(t, "ca", revoked.Cert)

	mutual := TLSConfig{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile, CRL: crl}
	oneWay := TLSConfig{Cert: srvPair.CertFile, Key: srvPair.KeyFile}
	for _, tc := range []struct {
		name   string
		server TLSConfig
		client credentials.TransportCredentials
		ok     bool
	}{
		{"mutual: a client certificate signed by the CA", mutual, tlsCreds(ca.ClientTLS(t, good)), true},
		{"mutual: no client certificate is refused", mutual, tlsCreds(ca.ClientTLS(t, certtest.Pair{})), false},
		{"mutual: a certificate from another CA is refused", mutual, tlsCreds(ca.ClientTLS(t, stranger)), false},
		{"mutual: a revoked certificate is refused", mutual, tlsCreds(ca.ClientTLS(t, revoked)), false},
		{"mutual: plain text is refused", mutual, insecure.NewCredentials(), false},
		{"mutual: a client not trusting the server's CA gives up", mutual, tlsCreds(other.ClientTLS(t, good)), false},
		{"one-way: no client certificate needed", oneWay, tlsCreds(ca.ClientTLS(t, certtest.Pair{})), true},
		{"one-way: plain text is refused", oneWay, insecure.NewCredentials(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := NewTLSServer(tc.server, nil)
			if err != nil {
				t.Fatal(err)
			}
			addr := serveHealth(t, grpc.Creds(ts.Credentials()))
			err = check(t, addr, tc.client)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v, want the connection refused (UNAVAILABLE)", err)
			}
		})
	}
}

// TestServerCAChain: --grpc-server-ca sends the intermediate after the certificate, so a
// client trusting only the root verifies the server.
func TestServerCAChain(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, dir, "root")
	inter := root.Intermediate(t, "inter")
	pair := inter.Server(t, "server")
	ts, err := NewTLSServer(TLSConfig{Cert: pair.CertFile, Key: pair.KeyFile, ServerCA: inter.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveHealth(t, grpc.Creds(ts.Credentials()))
	if err := check(t, addr, tlsCreds(root.ClientTLS(t, certtest.Pair{}))); err != nil {
		t.Fatalf("a client trusting the root cannot verify the chain: %v", err)
	}
	bare, err := NewTLSServer(TLSConfig{Cert: pair.CertFile, Key: pair.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, serveHealth(t, grpc.Creds(bare.Credentials())), tlsCreds(root.ClientTLS(t, certtest.Pair{}))); status.Code(err) != codes.Unavailable {
		t.Fatalf("without --grpc-server-ca the chain is incomplete, yet the call gave %v", err)
	}
}

// TestTLSReload: new certificate files are served without a restart (seen at the next
// handshake after CheckInterval, or at once on Reload); files that cannot be loaded keep the
// certificate in force.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca1 := certtest.NewCA(t, dir, "ca1")
	ca2 := certtest.NewCA(t, dir, "ca2")
	first := ca1.Server(t, "first")
	second := ca2.Server(t, "second")
	cert, key := filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	install := func(p certtest.Pair) {
		t.Helper()
		for _, f := range [][2]string{{p.CertFile, cert}, {p.KeyFile, key}} {
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
	install(first)
	failures := make(chan error, 10)
	ts, err := NewTLSServer(TLSConfig{Cert: cert, Key: key, CheckInterval: 10 * time.Millisecond}, func(err error) { failures <- err })
	if err != nil {
		t.Fatal(err)
	}
	addr := serveHealth(t, grpc.Creds(ts.Credentials()))
	trust1, trust2 := tlsCreds(ca1.ClientTLS(t, certtest.Pair{})), tlsCreds(ca2.ClientTLS(t, certtest.Pair{}))
	if err := check(t, addr, trust1); err != nil {
		t.Fatal(err)
	}

	install(second)
	waitFor(t, "the new certificate is served", func() bool { return check(t, addr, trust2) == nil })
	if err := check(t, addr, trust1); status.Code(err) != codes.Unavailable {
		t.Fatalf("the old certificate is still served: %v", err)
	}

	// A broken key file: the automatic reload fails (reported), so does Reload, and the
	// certificate in force stays.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed automatic reload is reported", func() bool {
		if err := check(t, addr, trust2); err != nil {
			t.Fatalf("a broken key file replaced the certificate in force: %v", err)
		}
		select {
		case <-failures:
			return true
		default:
			return false
		}
	})
	if err := ts.Reload(); err == nil {
		t.Fatal("Reload accepted a broken key file")
	}
	if err := check(t, addr, trust2); err != nil {
		t.Fatalf("after a failed reload the certificate in force was lost: %v", err)
	}
	if _, lastErr := ts.Status(); lastErr == nil {
		t.Fatal("Status does not show the failed reload")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStaticAuth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(file, []byte(`[{"Username": "vtgate", "Password": "gate-pw"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(AuthConfig{Mode: AuthStatic, StaticPasswordFile: file}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveHealth(t, a.ServerOptions()...)
	plain := insecure.NewCredentials()
	for _, tc := range []struct {
		name string
		md   []string
		want vtrpcpb.Code
	}{
		{"right user and password", []string{"username", "vtgate", "password", "gate-pw"}, vtrpcpb.Code_OK},
		{"nothing presented", nil, vtrpcpb.Code_UNAUTHENTICATED},
		{"user without password", []string{"username", "vtgate"}, vtrpcpb.Code_UNAUTHENTICATED},
		{"wrong password", []string{"username", "vtgate", "password", "nope"}, vtrpcpb.Code_PERMISSION_DENIED},
		{"unknown user", []string{"username", "vtctld", "password", "gate-pw"}, vtrpcpb.Code_PERMISSION_DENIED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rpcerr.Code(check(t, addr, plain, tc.md...)); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
		})
	}
	// Reload: a new user is accepted, a malformed file keeps the entries in force.
	if err := os.WriteFile(file, []byte(`[{"Username": "vtctld", "Password": "ctld-pw"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := check(t, addr, plain, "username", "vtctld", "password", "ctld-pw"); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if err := os.WriteFile(file, []byte(`[{"Username": "vtctld", "Password": "leaked-pw"`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = a.Reload()
	if err == nil {
		t.Fatal("a malformed file was accepted")
	}
	if strings.Contains(err.Error(), "leaked-pw") {
		t.Fatalf("the reload error quotes the file's content: %v", err)
	}
	if err := check(t, addr, plain, "username", "vtctld", "password", "ctld-pw"); err != nil {
		t.Fatalf("a failed reload dropped the entries in force: %v", err)
	}
}

func TestMTLSAuth(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "ca")
	srvPair := ca.Server(t, "server")
	ts, err := NewTLSServer(TLSConfig{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(AuthConfig{Mode: AuthMTLS, MTLSAllowedSubstrings: "CN=vtgate:CN=vtctld"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveHealth(t, append([]grpc.ServerOption{grpc.Creds(ts.Credentials())}, a.ServerOptions()...)...)
	for _, tc := range []struct {
		cn   string
		want vtrpcpb.Code
	}{
		{"vtgate", vtrpcpb.Code_OK},
		{"vtctld", vtrpcpb.Code_OK},
		{"intruder", vtrpcpb.Code_UNAUTHENTICATED},
	} {
		t.Run(tc.cn, func(t *testing.T) {
			err := check(t, addr, tlsCreds(ca.ClientTLS(t, ca.Client(t, tc.cn))))
			if got := rpcerr.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestSecurityConfigValidate(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "ca")
	pair := ca.Server(t, "server")
	authFile := filepath.Join(dir, "auth.json")
	_ = os.WriteFile(authFile, []byte(`[{"Username": "u", "Password": "p"}]`), 0o600)
	badAuth := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(badAuth, []byte(`{"Username": "u"}`), 0o600)
	mutual := TLSConfig{Cert: pair.CertFile, Key: pair.KeyFile, CA: ca.CertFile}
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		auth AuthConfig
		ok   bool
	}{
		{"nothing", TLSConfig{}, AuthConfig{}, true},
		{"mutual TLS", mutual, AuthConfig{}, true},
		{"mtls auth", mutual, AuthConfig{Mode: AuthMTLS, MTLSAllowedSubstrings: "vtgate"}, true},
		{"static auth", TLSConfig{}, AuthConfig{Mode: AuthStatic, StaticPasswordFile: authFile}, true},
		{"cert without key", TLSConfig{Cert: pair.CertFile}, AuthConfig{}, false},
		{"key without cert", TLSConfig{Key: pair.KeyFile}, AuthConfig{}, false},
		{"CA without TLS", TLSConfig{CA: ca.CertFile}, AuthConfig{}, false},
		{"CRL that is no CRL", TLSConfig{Cert: pair.CertFile, Key: pair.KeyFile, CRL: ca.CertFile}, AuthConfig{}, false},
		{"missing certificate file", TLSConfig{Cert: filepath.Join(dir, "none.pem"), Key: pair.KeyFile}, AuthConfig{}, false},
		{"mtls auth without client CA", TLSConfig{Cert: pair.CertFile, Key: pair.KeyFile}, AuthConfig{Mode: AuthMTLS}, false},
		{"static auth without file", TLSConfig{}, AuthConfig{Mode: AuthStatic}, false},
		{"static auth, malformed file", TLSConfig{}, AuthConfig{Mode: AuthStatic, StaticPasswordFile: badAuth}, false},
		{"unknown mode", TLSConfig{}, AuthConfig{Mode: "kerberos"}, false},
		{"auth file without a mode", TLSConfig{}, AuthConfig{StaticPasswordFile: authFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := errors.Join(tc.tls.Validate(), tc.auth.Validate(tc.tls))
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestMaskErrors: an error text carrying a secret leaves masked, with its code.
func TestMaskErrors(t *testing.T) {
	h := health.NewServer()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fail := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
		return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "CHANGE MASTER TO MASTER_PASSWORD = 's3cr3t-pw' failed")
	})
	mask := func(s string) string { return strings.ReplaceAll(s, "s3cr3t-pw", "*********") }
	srv := grpc.NewServer(append(append(ServerOptions(zap.NewNop(), nil, DefaultTuning()), MaskErrors(mask)...), fail)...)
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	err = check(t, lis.Addr().String(), insecure.NewCredentials())
	if rpcerr.Code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Fatalf("code lost: %v", err)
	}
	if strings.Contains(status.Convert(err).Message(), "s3cr3t-pw") {
		t.Fatalf("the secret left in the error: %v", err)
	}
}
