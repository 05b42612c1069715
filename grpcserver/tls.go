package grpcserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// TLSConfig is the gRPC server's TLS, with vttablet's flags. TLS is on when Cert and Key
// are set; CA makes it mutual (every client must present a certificate signed by it).
type TLSConfig struct {
	Cert     string // --grpc-cert: server certificate (PEM)
	Key      string // --grpc-key: its private key (PEM)
	CA       string // --grpc-ca: CA(s) that sign client certificates; set = client certificates required
	CRL      string // --grpc-crl: PEM revocation list(s); a revoked client certificate is refused
	ServerCA string // --grpc-server-ca: intermediate/CA certificates sent after Cert (the full chain)
	// MinVersion is the lowest TLS version accepted (0: TLS 1.2, as vttablet).
	MinVersion uint16
	// CheckInterval is how often a handshake looks whether the files changed (their size or
	// modification time); changed files are loaded without a restart. 0: 1s; < 0: only
	// Reload loads them.
	CheckInterval time.Duration
}

// Enabled reports whether TLS is configured.
func (c TLSConfig) Enabled() bool { return c.Cert != "" || c.Key != "" }

// Validate reports the first setting that cannot work; it loads the files.
func (c TLSConfig) Validate() error {
	if !c.Enabled() {
		for _, f := range []struct{ flag, v string }{{"--grpc-ca", c.CA}, {"--grpc-crl", c.CRL}, {"--grpc-server-ca", c.ServerCA}} {
			if f.v != "" {
				return fmt.Errorf("%s needs --grpc-cert and --grpc-key (TLS is off without them)", f.flag)
			}
		}
		return nil
	}
	_, err := c.load()
	return err
}

// TLSServer serves the gRPC port's TLS. The certificates, CA and CRL are read at start and
// again when the files change (checked at most every CheckInterval, during a handshake) or
// on Reload; files that fail to load leave the configuration in force.
type TLSServer struct {
	cfg TLSConfig

	current   atomic.Pointer[tls.Config]
	mu        sync.Mutex // serializes loads; guards the fields below
	stamps    []fileStamp
	checked   time.Time
	loadedAt  time.Time
	lastErr   error
	onFailure func(error) // counts and logs a failed automatic reload; may be nil
}

// NewTLSServer loads cfg's files. onFailure (may be nil) hears of automatic reloads that
// failed.
func NewTLSServer(cfg TLSConfig, onFailure func(error)) (*TLSServer, error) {
	if !cfg.Enabled() {
		return nil, errors.New("grpcserver: TLS is not configured (--grpc-cert, --grpc-key)")
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Second
	}
	s := &TLSServer{cfg: cfg, onFailure: onFailure}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Credentials are the gRPC transport credentials: every handshake takes the configuration
// in force.
func (s *TLSServer) Credentials() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion:         s.current.Load().MinVersion,
		NextProtos:         []string{"h2"},
		GetConfigForClient: s.configForClient,
	})
}

// Reload reads the files now. On error the configuration in force stays.
func (s *TLSServer) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *TLSServer) reloadLocked() error {
	stamps := s.cfg.stamps()
	cfg, err := s.cfg.load()
	s.checked = time.Now()
	if err != nil {
		s.lastErr = err
		return err
	}
	s.current.Store(cfg)
	s.stamps, s.loadedAt, s.lastErr = stamps, time.Now(), nil
	return nil
}

// Status is when the configuration in force was loaded and the last failed load.
func (s *TLSServer) Status() (loadedAt time.Time, lastErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadedAt, s.lastErr
}

// configForClient returns the configuration in force, loading changed files first (at most
// once per CheckInterval; handshakes in between never wait on a load).
func (s *TLSServer) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	if s.cfg.CheckInterval > 0 && s.mu.TryLock() {
		if time.Since(s.checked) >= s.cfg.CheckInterval {
			s.checked = time.Now()
			if stamps := s.cfg.stamps(); !equalStamps(stamps, s.stamps) {
				if err := s.reloadLocked(); err != nil && s.onFailure != nil {
					s.onFailure(err)
				}
			}
		}
		s.mu.Unlock()
	}
	return s.current.Load(), nil
}

// fileStamp identifies a version of a file cheaply.
type fileStamp struct {
	size int64
	mod  time.Time
	err  bool
}

func (c TLSConfig) files() []string {
	return []string{c.Cert, c.Key, c.CA, c.CRL, c.ServerCA}
}

func (c TLSConfig) stamps() []fileStamp {
	out := make([]fileStamp, 0, 5)
	for _, f := range c.files() {
		if f == "" {
			out = append(out, fileStamp{})
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			out = append(out, fileStamp{err: true})
			continue
		}
		out = append(out, fileStamp{size: st.Size(), mod: st.ModTime()})
	}
	return out
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].size != b[i].size || !a[i].mod.Equal(b[i].mod) || a[i].err != b[i].err {
			return false
		}
	}
	return true
}

// load builds the server configuration from the files; errors name the flag.
func (c TLSConfig) load() (*tls.Config, error) {
	if c.Cert == "" || c.Key == "" {
		return nil, errors.New("--grpc-cert and --grpc-key go together: give both or neither")
	}
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return nil, fmt.Errorf("--grpc-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(c.Key)
	if err != nil {
		return nil, fmt.Errorf("--grpc-key: %w", err)
	}
	if c.ServerCA != "" {
		ca, err := os.ReadFile(c.ServerCA)
		if err != nil {
			return nil, fmt.Errorf("--grpc-server-ca: %w", err)
		}
		if len(pemBlocks(ca, "CERTIFICATE")) == 0 {
			return nil, fmt.Errorf("--grpc-server-ca %s: no PEM certificate in it", c.ServerCA)
		}
		certPEM = append(append(bytes.TrimRight(certPEM, "\n"), '\n'), ca...)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--grpc-cert %s / --grpc-key %s: %w", c.Cert, c.Key, err)
	}
	min := c.MinVersion
	if min == 0 {
		min = tls.VersionTLS12
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: min, NextProtos: []string{"h2"}}
	if c.CA != "" {
		pool, err := loadPool(c.CA)
		if err != nil {
			return nil, fmt.Errorf("--grpc-ca: %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if c.CRL != "" {
		crls, err := loadCRLs(c.CRL)
		if err != nil {
			return nil, fmt.Errorf("--grpc-crl: %w", err)
		}
		cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			return checkRevoked(chains, crls)
		}
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

func pemBlocks(data []byte, typ string) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type == typ {
			out = append(out, b.Bytes)
		}
	}
	return out
}

// loadCRLs parses every "X509 CRL" block of path; a file with none is an error (a CRL flag
// that revokes nothing is a mistake worth hearing of).
func loadCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.RevocationList
	for _, der := range pemBlocks(data, "X509 CRL") {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM \"X509 CRL\" block in it", path)
	}
	return out, nil
}

// checkRevoked refuses a verified chain in which a certificate is revoked by a CRL its
// issuer signed. A CRL past its next update still revokes (as in vttablet).
func checkRevoked(chains [][]*x509.Certificate, crls []*x509.RevocationList) error {
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, crl := range crls {
				if crl.CheckSignatureFrom(issuer) != nil {
					continue
				}
				for _, r := range crl.RevokedCertificateEntries {
					if r.SerialNumber.Cmp(cert.SerialNumber) == 0 {
						return fmt.Errorf("certificate revoked: %s (serial %s)", cert.Subject, cert.SerialNumber)
					}
				}
			}
		}
	}
	return nil
}
