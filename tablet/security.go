package tablet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/mysqlconn"
)

// SecurityConfig is how tabletd's ports are guarded: the HTTP pages (--security-policy,
// --pprof-http), the gRPC port's TLS (--grpc-cert, …) and its authentication
// (--grpc-auth-mode, …). MySQL's TLS is in DB.TLS, its credentials in DB.
type SecurityConfig struct {
	HTTPPolicy string // httpserver.PolicyAllowAll, PolicyDenyAll, PolicyReadOnly
	Pprof      bool
	GRPCTLS    grpcserver.TLSConfig
	GRPCAuth   grpcserver.AuthConfig
}

// Validate reports the first setting that cannot work (it reads the files named).
func (c SecurityConfig) Validate() error {
	if err := (httpserver.Security{Policy: c.HTTPPolicy}).Validate(); err != nil {
		return err
	}
	if err := c.GRPCTLS.Validate(); err != nil {
		return err
	}
	return c.GRPCAuth.Validate(c.GRPCTLS)
}

// security is the running part: what SIGHUP reloads and what the masks know.
type security struct {
	tls  *grpcserver.TLSServer     // nil without gRPC TLS
	auth *grpcserver.Authenticator // nil without --grpc-auth-mode

	reloadFailures prometheus.Counter
	mu             sync.Mutex
	lastErr        error
}

// secureConn completes a query-path connection's settings: the password is read at every
// connect (a rotated credentials file applies to new connections) and TLS follows DB.TLS.
// Config.Validate checked the TLS files; if they became unusable since, the connection is
// made to fail (nothing trusted) rather than go out in plain text.
func secureConn(c *mysqlconn.Config, db dbconfig.Config, role dbconfig.Role) {
	if db.CredentialsFile != nil {
		c.PasswordSource = db.PasswordSource(role)
	}
	tc, err := db.ClientTLS(role)
	switch {
	case err != nil:
		c.TLS = failingTLS()
	case tc != nil:
		c.TLS = tc
	}
}

// Secrets are every secret the tablet holds now: the MySQL passwords (credentials file
// included) and the gRPC static auth passwords. Logs, pages and errors are masked with them.
func (t *Tablet) Secrets() []string {
	s := t.cfg.DB.Secrets()
	if sec := t.sec.Load(); sec != nil {
		s = append(s, sec.auth.Passwords()...)
	}
	return s
}

func (t *Tablet) maskString(s string) string { return dbconfig.MaskString(s, t.Secrets()) }

// grpcSecurity builds the gRPC port's TLS credentials, authentication and error masking.
func (t *Tablet) grpcSecurity() ([]grpc.ServerOption, error) {
	labels := prometheus.Labels{"keyspace": t.cfg.Keyspace, "shard": t.cfg.Shard}
	sec := &security{reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tabletd_security_reload_errors_total", ConstLabels: labels,
		Help: "Reloads of the credentials file, gRPC certificates or static auth file that failed (what was in force stayed)."})}
	if err := t.reg.Register(sec.reloadFailures); err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	c := t.cfg.Security
	if c.GRPCTLS.Enabled() {
		ts, err := grpcserver.NewTLSServer(c.GRPCTLS, func(err error) {
			sec.reloadFailures.Inc()
			t.log.Warn("gRPC certificates changed but cannot be loaded; the ones in force stay", zap.Error(err))
		})
		if err != nil {
			return nil, &ConfigError{err}
		}
		sec.tls = ts
		opts = append(opts, grpc.Creds(ts.Credentials()))
		t.log.Info("gRPC port serves TLS", zap.Bool("client_certificates_required", c.GRPCTLS.CA != ""))
	}
	auth, err := grpcserver.NewAuthenticator(c.GRPCAuth, t.reg, labels)
	if err != nil {
		return nil, &ConfigError{err}
	}
	if auth != nil {
		sec.auth = auth
		opts = append(opts, auth.ServerOptions()...)
		t.log.Info("gRPC callers are authenticated", zap.String("mode", c.GRPCAuth.Mode))
	}
	t.sec.Store(sec)
	return append(opts, grpcserver.MaskErrors(t.maskString)...), nil
}

// ReloadSecurity re-reads, on SIGHUP, the files that may change without a restart: the
// MySQL credentials file, the gRPC certificates, CA and CRL, and the static auth file.
// Each that fails keeps what is in force; the errors are logged, counted and returned.
func (t *Tablet) ReloadSecurity() error {
	var errs []error
	if f := t.cfg.DB.CredentialsFile; f != nil {
		errs = append(errs, f.Reload())
	}
	sec := t.sec.Load()
	if sec != nil {
		if sec.tls != nil {
			errs = append(errs, sec.tls.Reload())
		}
		errs = append(errs, sec.auth.Reload())
	}
	err := errors.Join(errs...)
	if sec != nil {
		sec.mu.Lock()
		sec.lastErr = err
		sec.mu.Unlock()
		if err != nil {
			sec.reloadFailures.Inc()
		}
	}
	if err != nil {
		t.log.Warn("reloading credentials and certificates: what failed keeps what was in force", zap.Error(err))
		return err
	}
	t.log.Info("credentials and certificates reloaded")
	return nil
}

// HTTPSecurity implements httpserver.SecuritySource: the policy, pprof, and the mask of
// every secret the tablet holds.
func (s statusSource) HTTPSecurity() httpserver.Security {
	t := s.t
	return httpserver.Security{
		Policy: t.cfg.Security.HTTPPolicy,
		Pprof:  t.cfg.Security.Pprof,
		Mask:   func(b []byte) []byte { return dbconfig.Mask(b, t.Secrets()) },
		SecretForms: func() [][]byte {
			return dbconfig.MaskForms(t.Secrets())
		},
	}
}

// failingTLS trusts no certificate: every handshake fails.
func failingTLS() *tls.Config {
	return &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "invalid", MinVersion: tls.VersionTLS12}
}
