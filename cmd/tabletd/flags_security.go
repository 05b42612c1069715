package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/tablet"
)

// passwordEnv is the environment variable that gives role's password when no
// --db-<role>-password flag is given: TABLETD_DB_APP_PASSWORD, TABLETD_DB_DBA_PASSWORD, …
func passwordEnv(role dbconfig.Role) string {
	return "TABLETD_DB_" + strings.ToUpper(string(role)) + "_PASSWORD"
}

// securityOptions are vttablet's security flags: the HTTP security policy and pprof, the
// gRPC port's TLS and authentication, MySQL's TLS, and where passwords come from.
type securityOptions struct {
	fs       *pflag.FlagSet
	policy   string
	pprof    bool
	grpcTLS  grpcserver.TLSConfig
	grpcAuth grpcserver.AuthConfig
	dbTLS    dbconfig.TLSConfig

	secrets atomic.Pointer[func() []string] // what the log mask knows; set by apply, then by useSecrets
}

func (o *securityOptions) bind(fs *pflag.FlagSet) {
	o.fs = fs
	fs.StringVar(&o.policy, "security-policy", "", "who may see the HTTP pages: empty allows all; deny-all refuses every page but /healthz; read-only refuses admin actions (/livequeryz/terminate)")
	fs.BoolVar(&o.pprof, "pprof-http", false, "serve /debug/pprof/ on the HTTP port (its command line has passwords redacted)")
	t := &o.grpcTLS
	fs.StringVar(&t.Cert, "grpc-cert", "", "server certificate (PEM) for the gRPC port; with --grpc-key, turns TLS on; reloaded when the file changes and on SIGHUP")
	fs.StringVar(&t.Key, "grpc-key", "", "private key (PEM) of --grpc-cert")
	fs.StringVar(&t.CA, "grpc-ca", "", "CA (PEM) that signs client certificates: set, every gRPC client must present one (mutual TLS)")
	fs.StringVar(&t.CRL, "grpc-crl", "", "certificate revocation list (PEM): revoked client certificates are refused")
	fs.StringVar(&t.ServerCA, "grpc-server-ca", "", "CA/intermediate certificates (PEM) sent after --grpc-cert, the full chain to clients")
	a := &o.grpcAuth
	fs.StringVar(&a.Mode, "grpc-auth-mode", "", "gRPC caller authentication: static (--grpc-auth-static-password-file) or mtls (--grpc-auth-mtls-allowed-substrings); empty: none")
	fs.StringVar(&a.StaticPasswordFile, "grpc-auth-static-password-file", "", "JSON [{\"Username\": …, \"Password\": …}] of the callers static auth accepts; re-read on SIGHUP")
	fs.StringVar(&a.MTLSAllowedSubstrings, "grpc-auth-mtls-allowed-substrings", "", "colon-separated substrings, one of which a client certificate's subject must contain (mtls)")
	d := &o.dbTLS
	fs.StringVar(&d.Mode, "db-ssl-mode", "", "TLS to MySQL: disabled, preferred, required, verify_ca or verify_identity (empty: verify_identity when --db-flags has CLIENT_SSL 2048, else disabled)")
	fs.StringVar(&d.CA, "db-ssl-ca", "", "CA (PEM) that signs MySQL's certificate")
	fs.StringVar(&d.CAPath, "db-ssl-ca-path", "", "directory of CA (PEM) files that sign MySQL's certificate")
	fs.StringVar(&d.Cert, "db-ssl-cert", "", "client certificate (PEM) presented to MySQL")
	fs.StringVar(&d.Key, "db-ssl-key", "", "private key (PEM) of --db-ssl-cert")
	fs.StringVar(&d.ServerName, "db-server-name", "", "name MySQL's certificate must carry with verify_identity (default: --db-host)")
	fs.StringVar(&d.MinVersion, "db-tls-min-version", "", "lowest TLS version to MySQL: TLSv1.0, TLSv1.1, TLSv1.2 (default), TLSv1.3")
	fs.Uint64Var(&d.Flags, "db-flags", 0, "MySQL client flags; CLIENT_SSL (2048) without --db-ssl-mode means verify_identity, as in vttablet")
}

// apply fills the security configuration and completes the passwords: a --db-<role>-password
// flag, else $TABLETD_DB_<ROLE>_PASSWORD; the credentials file (read by the drop-in
// settings, kept here to be re-read on SIGHUP) gives the password of every user it lists.
func (o *securityOptions) apply(c *tablet.Config, env func(string) string, credsFile string) error {
	c.Security = tablet.SecurityConfig{HTTPPolicy: o.policy, Pprof: o.pprof, GRPCTLS: o.grpcTLS, GRPCAuth: o.grpcAuth}
	c.DB.TLS = o.dbTLS
	for _, r := range dbconfig.Roles {
		if o.fs.Changed("db-" + string(r) + "-password") {
			continue
		}
		if pw := env(passwordEnv(r)); pw != "" {
			cred := c.DB.Users[r]
			cred.Password = pw
			c.DB.Users[r] = cred
		}
	}
	if credsFile != "" {
		f, err := dbconfig.OpenCredentialsFile(credsFile)
		if err != nil {
			return err
		}
		c.DB.CredentialsFile = f
		for _, r := range dbconfig.Roles { // so that everything reading Users sees the file's
			cred := c.DB.Users[r]
			cred.Password = c.DB.Password(r)
			c.DB.Users[r] = cred
		}
	}
	db := c.DB
	o.useSecrets(db.Secrets)
	return nil // tablet.New validates the files and modes, naming the flags
}

// useSecrets tells the log mask where the secrets are (the tablet's, once it exists: they
// include the gRPC static auth passwords).
func (o *securityOptions) useSecrets(f func() []string) { o.secrets.Store(&f) }

func (o *securityOptions) currentSecrets() []string {
	if f := o.secrets.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// maskWriter returns w with every secret masked (nil stays nil): tabletd's logs and error
// lines never carry a password, even one that reached a message by accident.
func (o *securityOptions) maskWriter(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &maskedWriter{w: w, secrets: o.currentSecrets}
}

// maskedWriter masks each write (zap writes one whole entry per call).
type maskedWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets func() []string
}

func (m *maskedWriter) Write(p []byte) (int, error) {
	b := dbconfig.Mask(append([]byte(nil), p...), m.secrets())
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// warnPasswordFlags tells the operator, once at start, about each password given on the
// command line: anyone on the machine can read a process's arguments (ps, /proc), so the
// password belongs in --db-credentials-file or $TABLETD_DB_<ROLE>_PASSWORD. tabletd's own
// pages and logs show it redacted.
func warnPasswordFlags(log *zap.Logger, args []string) {
	seen := map[string]bool{}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if httpserver.SecretFlag(name) {
			seen["--"+strings.ReplaceAll(name, "_", "-")] = true
		}
	}
	if len(seen) == 0 {
		return
	}
	flags := make([]string, 0, len(seen))
	for f := range seen {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	log.Warn("passwords given on the command line are readable by every user of this machine (ps, /proc); "+
		"tabletd redacts them on its pages and in its logs, but move them to --db-credentials-file or "+
		"the environment ($TABLETD_DB_<ROLE>_PASSWORD)", zap.Strings("flags", flags))
}

// redactProcessArgs replaces os.Args by a copy whose password values are redacted, and
// returns the original for parsing: whatever reads os.Args later (pprof's cmdline,
// /debug/vars) sees no password.
func redactProcessArgs() []string {
	orig := append([]string(nil), os.Args...)
	os.Args = httpserver.RedactArgs(os.Args)
	return orig
}

// logStart warns about passwords on the command line and says how the ports are guarded.
func (o *securityOptions) logStart(log *zap.Logger, args []string, c tablet.Config) {
	warnPasswordFlags(log, args)
	log.Info("security: " + describeSecurity(c))
}

// describeSecurity is the one line at start saying how the ports are guarded.
func describeSecurity(c tablet.Config) string {
	tlsMode := "plain text"
	if c.Security.GRPCTLS.Enabled() {
		tlsMode = "TLS"
		if c.Security.GRPCTLS.CA != "" {
			tlsMode = "mutual TLS"
		}
	}
	auth := c.Security.GRPCAuth.Mode
	if auth == "" {
		auth = "none"
	}
	policy := c.Security.HTTPPolicy
	if policy == "" {
		policy = "allow all"
	}
	return fmt.Sprintf("gRPC %s, auth %s; HTTP policy %s, pprof %v; MySQL TLS %s", tlsMode, auth, policy, c.Security.Pprof, c.DB.TLS.EffectiveMode())
}
