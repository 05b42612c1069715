package dbconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// TLS modes, with vttablet's names (--db-ssl-mode, MySQL's ssl-mode).
const (
	TLSDisabled       = "disabled"        // plain text
	TLSPreferred      = "preferred"       // TLS over TCP, not over a unix socket; the server is not verified
	TLSRequired       = "required"        // TLS, the server is not verified
	TLSVerifyCA       = "verify_ca"       // TLS, the server's certificate must chain to the CA
	TLSVerifyIdentity = "verify_identity" // verify_ca, and the certificate must name the server
)

// ClientSSLFlag is MySQL's CLIENT_SSL capability: in --db-flags with no --db-ssl-mode it
// means verify_identity, as in vttablet.
const ClientSSLFlag = 2048

// TLSConfig is how tabletd encrypts its MySQL connections (vttablet's --db-ssl-* flags).
// The zero value is plain text.
type TLSConfig struct {
	Mode       string `yaml:"mode"`       // --db-ssl-mode; empty: verify_identity when Flags has CLIENT_SSL, else disabled
	CA         string `yaml:"ca"`         // --db-ssl-ca: PEM file of the CA(s) that sign the server's certificate
	CAPath     string `yaml:"caPath"`     // --db-ssl-ca-path: a directory of PEM CA files
	Cert       string `yaml:"cert"`       // --db-ssl-cert: client certificate (PEM)
	Key        string `yaml:"key"`        // --db-ssl-key: its private key (PEM)
	ServerName string `yaml:"serverName"` // --db-server-name: the name the server's certificate must carry (default: --db-host)
	MinVersion string `yaml:"minVersion"` // --db-tls-min-version: TLSv1.0 … TLSv1.3; default TLSv1.2
	Flags      uint64 `yaml:"flags"`      // --db-flags: MySQL client capability flags
}

// EffectiveMode is the mode in force: Mode, else vttablet's legacy rule on Flags.
func (t TLSConfig) EffectiveMode() string {
	if t.Mode != "" {
		return strings.ToLower(t.Mode)
	}
	if t.Flags&ClientSSLFlag != 0 {
		return TLSVerifyIdentity
	}
	return TLSDisabled
}

// TLSVersion parses --db-tls-min-version (and --grpc's), as vttablet spells it.
func TLSVersion(s string) (uint16, error) {
	switch strings.ToLower(s) {
	case "", "tlsv1.2":
		return tls.VersionTLS12, nil
	case "tlsv1.3":
		return tls.VersionTLS13, nil
	case "tlsv1.1":
		return tls.VersionTLS11, nil
	case "tlsv1.0":
		return tls.VersionTLS10, nil
	}
	return 0, fmt.Errorf("--db-tls-min-version %q: use TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", s)
}

// Validate reports the first setting that cannot work, reading the files it names.
func (t TLSConfig) Validate() error {
	_, err := t.build("localhost")
	return err
}

// ClientTLS returns the TLS configuration for a connection to the server at host (a TCP
// host, or "" over a unix socket), and nil when the connection is plain text: mode disabled,
// preferred over a unix socket (as MySQL and vttablet do), or the role's NoTLS
// (--db-<role>-use-ssl=false).
func (c Config) ClientTLS(role Role) (*tls.Config, error) {
	if c.Users[role].NoTLS {
		return nil, nil
	}
	mode := c.TLS.EffectiveMode()
	if mode == TLSDisabled || (mode == TLSPreferred && c.Socket != "") {
		return nil, nil
	}
	host := c.Host
	if c.Socket != "" {
		host = "localhost"
	}
	return c.TLS.build(host)
}

func (t TLSConfig) build(host string) (*tls.Config, error) {
	mode := t.EffectiveMode()
	switch mode {
	case TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyIdentity:
	default:
		return nil, fmt.Errorf("--db-ssl-mode %q: use disabled, preferred, required, verify_ca or verify_identity", t.Mode)
	}
	minVersion, err := TLSVersion(t.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion}
	switch {
	case (t.Cert == "") != (t.Key == ""):
		return nil, errors.New("--db-ssl-cert and --db-ssl-key go together: give both or neither")
	case t.Cert != "":
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("--db-ssl-cert %s / --db-ssl-key %s: %w", t.Cert, t.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	roots, err := t.rootCAs()
	if err != nil {
		return nil, err
	}
	if mode == TLSDisabled {
		return nil, nil
	}
	cfg.RootCAs = roots
	switch mode {
	case TLSPreferred, TLSRequired:
		cfg.InsecureSkipVerify = true
	case TLSVerifyCA:
		// The chain is checked against the CA, the name is not: Go checks both or neither,
		// so verification is done here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	case TLSVerifyIdentity:
		cfg.ServerName = t.ServerName
		if cfg.ServerName == "" {
			cfg.ServerName = hostOnly(host)
		}
	}
	return cfg, nil
}

// rootCAs is the CA pool from --db-ssl-ca and --db-ssl-ca-path; nil (the system's) when
// neither is given.
func (t TLSConfig) rootCAs() (*x509.CertPool, error) {
	if t.CA == "" && t.CAPath == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	var files []string
	if t.CA != "" {
		files = append(files, t.CA)
	}
	if t.CAPath != "" {
		entries, err := os.ReadDir(t.CAPath)
		if err != nil {
			return nil, fmt.Errorf("--db-ssl-ca-path: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(t.CAPath, e.Name()))
			}
		}
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--db-ssl-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) && f == t.CA {
			return nil, fmt.Errorf("--db-ssl-ca %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the MySQL server sent no certificate")
	}
	if roots == nil {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			return err
		}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}
