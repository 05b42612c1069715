package grpcserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Authentication modes (--grpc-auth-mode), as Vitess names them.
const (
	AuthNone   = ""
	AuthStatic = "static" // username and password in the call's metadata, checked against a file
	AuthMTLS   = "mtls"   // the client certificate's subject must contain an allowed substring
)

// AuthConfig is how callers of the gRPC port are authenticated.
type AuthConfig struct {
	Mode string
	// StaticPasswordFile is Vitess's --grpc-auth-static-password-file: a JSON array of
	// {"Username": "…", "Password": "…"}; re-read by Reload.
	StaticPasswordFile string
	// MTLSAllowedSubstrings is --grpc-auth-mtls-allowed-substrings: colon-separated
	// substrings, one of which the subject of one of the client's certificates must contain.
	// Empty: any certificate the CA verified.
	MTLSAllowedSubstrings string
}

// Validate reports the first setting that cannot work; tls is the port's TLS.
func (c AuthConfig) Validate(tls TLSConfig) error {
	switch c.Mode {
	case AuthNone:
		if c.StaticPasswordFile != "" || c.MTLSAllowedSubstrings != "" {
			return errors.New("--grpc-auth-static-password-file and --grpc-auth-mtls-allowed-substrings need --grpc-auth-mode (static or mtls)")
		}
	case AuthStatic:
		if c.StaticPasswordFile == "" {
			return errors.New("--grpc-auth-mode static needs --grpc-auth-static-password-file")
		}
		_, err := loadStaticAuth(c.StaticPasswordFile)
		return err
	case AuthMTLS:
		if !tls.Enabled() || tls.CA == "" {
			return errors.New("--grpc-auth-mode mtls needs --grpc-cert, --grpc-key and --grpc-ca (client certificates are verified against the CA)")
		}
	default:
		return fmt.Errorf("--grpc-auth-mode %q: use static or mtls (empty: no authentication)", c.Mode)
	}
	return nil
}

// staticEntry is one line of the static password file, with Vitess's field names.
type staticEntry struct {
	Username string
	Password string
}

func loadStaticAuth(path string) ([]staticEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--grpc-auth-static-password-file: %w", err)
	}
	var entries []staticEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		// Never quote the content: it holds passwords.
		return nil, fmt.Errorf("--grpc-auth-static-password-file %s: not Vitess's JSON [{\"Username\": …, \"Password\": …}]", path)
	}
	for i, e := range entries {
		if e.Username == "" {
			return nil, fmt.Errorf("--grpc-auth-static-password-file %s: entry %d has no Username", path, i)
		}
	}
	return entries, nil
}

// Authenticator checks every call on the gRPC port before it reaches a service.
type Authenticator struct {
	cfg        AuthConfig
	substrings []string
	failures   *prometheus.CounterVec

	mu      sync.RWMutex
	entries []staticEntry // static mode
}

// NewAuthenticator returns the authenticator for cfg (nil for AuthNone); failures are
// counted on reg as tabletd_grpc_auth_failures_total{code}.
func NewAuthenticator(cfg AuthConfig, reg prometheus.Registerer, labels prometheus.Labels) (*Authenticator, error) {
	if cfg.Mode == AuthNone {
		return nil, nil
	}
	a := &Authenticator{cfg: cfg, failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tabletd_grpc_auth_failures_total", Help: "gRPC calls refused by --grpc-auth-mode, by gRPC code.",
		ConstLabels: labels}, []string{"code"})}
	for _, s := range strings.Split(cfg.MTLSAllowedSubstrings, ":") {
		if s != "" {
			a.substrings = append(a.substrings, s)
		}
	}
	if cfg.Mode == AuthStatic {
		if err := a.Reload(); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		if err := reg.Register(a.failures); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Reload re-reads the static password file; on error the entries in force stay.
func (a *Authenticator) Reload() error {
	if a == nil || a.cfg.Mode != AuthStatic {
		return nil
	}
	entries, err := loadStaticAuth(a.cfg.StaticPasswordFile)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.entries = entries
	a.mu.Unlock()
	return nil
}

// Passwords are the static file's passwords (kept out of logs like the database's).
func (a *Authenticator) Passwords() []string {
	if a == nil {
		return nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, 0, len(a.entries))
	for _, e := range a.entries {
		out = append(out, e.Password)
	}
	return out
}

// ServerOptions are the interceptors that authenticate unary and streaming calls.
func (a *Authenticator) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := a.authenticate(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := a.authenticate(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// authenticate returns nil for an authenticated caller, else UNAUTHENTICATED (nothing
// presented) or PERMISSION_DENIED (wrong credentials), with Vitess's texts.
func (a *Authenticator) authenticate(ctx context.Context) error {
	var err error
	switch a.cfg.Mode {
	case AuthStatic:
		err = a.checkStatic(ctx)
	case AuthMTLS:
		err = a.checkMTLS(ctx)
	}
	if err != nil {
		a.failures.WithLabelValues(rpcerr.Code(err).String()).Inc()
	}
	return err
}

func (a *Authenticator) checkStatic(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md["username"]) == 0 || len(md["password"]) == 0 {
		return rpcerr.New(vtrpcpb.Code_UNAUTHENTICATED, "username and password must be provided")
	}
	user, pw := md["username"][0], md["password"][0]
	a.mu.RLock()
	defer a.mu.RUnlock()
	ok := false
	for _, e := range a.entries {
		// Every entry is compared, in constant time, so timing tells nothing.
		u := subtle.ConstantTimeCompare([]byte(user), []byte(e.Username))
		p := subtle.ConstantTimeCompare([]byte(pw), []byte(e.Password))
		if u&p == 1 {
			ok = true
		}
	}
	if !ok {
		return rpcerr.New(vtrpcpb.Code_PERMISSION_DENIED, "auth failure: caller %q provided invalid credentials", user)
	}
	return nil
}

func (a *Authenticator) checkMTLS(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_UNAUTHENTICATED, "no peer connection info")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return rpcerr.New(vtrpcpb.Code_UNAUTHENTICATED, "not connected via TLS")
	}
	if len(a.substrings) == 0 {
		return nil
	}
	for _, cert := range info.State.PeerCertificates {
		subject := cert.Subject.String()
		for _, s := range a.substrings {
			if strings.Contains(subject, s) {
				return nil
			}
		}
	}
	return rpcerr.New(vtrpcpb.Code_UNAUTHENTICATED, "client certificate not authorized")
}

// MaskErrors returns the interceptors that pass every error a handler returns through mask
// (which keeps secrets out of error texts); the code and the cause stay.
func MaskErrors(mask func(string) string) []grpc.ServerOption {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		if m := mask(err.Error()); m != err.Error() {
			return rpcerr.WithCause(rpcerr.Code(err), m, err)
		}
		return err
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, wrap(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return wrap(h(srv, ss))
		}),
	}
}
