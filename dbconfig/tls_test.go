package dbconfig

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/tabletd/tabletd/test/certtest"
)

func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir, "ca")
	client := ca.Client(t, "vt_app")
	tcp := Default()
	tcp.Host = "db.example"
	sock := Default()
	sock.Socket = "/run/mysqld.sock"
	for _, tc := range []struct {
		name       string
		db         Config
		tls        TLSConfig
		noTLS      bool
		wantTLS    bool
		skipVerify bool
		serverName string
		bad        bool
	}{
		{name: "default is plain text", db: tcp},
		{name: "disabled", db: tcp, tls: TLSConfig{Mode: TLSDisabled, CA: ca.CertFile}},
		{name: "CLIENT_SSL in --db-flags means verify_identity", db: tcp, tls: TLSConfig{Flags: ClientSSLFlag, CA: ca.CertFile}, wantTLS: true, serverName: "db.example"},
		{name: "preferred over TCP", db: tcp, tls: TLSConfig{Mode: TLSPreferred}, wantTLS: true, skipVerify: true},
		{name: "preferred over a socket is plain", db: sock, tls: TLSConfig{Mode: TLSPreferred}},
		{name: "required", db: tcp, tls: TLSConfig{Mode: TLSRequired}, wantTLS: true, skipVerify: true},
		{name: "verify_ca checks the chain itself", db: tcp, tls: TLSConfig{Mode: TLSVerifyCA, CA: ca.CertFile}, wantTLS: true, skipVerify: true},
		{name: "verify_identity with --db-server-name", db: tcp, tls: TLSConfig{Mode: "VERIFY_IDENTITY", CA: ca.CertFile, ServerName: "mysql.internal"}, wantTLS: true, serverName: "mysql.internal"},
		{name: "client certificate", db: tcp, tls: TLSConfig{Mode: TLSRequired, Cert: client.CertFile, Key: client.KeyFile}, wantTLS: true, skipVerify: true},
		{name: "--db-<role>-use-ssl=false", db: tcp, tls: TLSConfig{Mode: TLSRequired}, noTLS: true},
		{name: "unknown mode", db: tcp, tls: TLSConfig{Mode: "always"}, bad: true},
		{name: "cert without key", db: tcp, tls: TLSConfig{Mode: TLSRequired, Cert: client.CertFile}, bad: true},
		{name: "missing CA file", db: tcp, tls: TLSConfig{Mode: TLSVerifyCA, CA: filepath.Join(dir, "none.pem")}, bad: true},
		{name: "CA file without a certificate", db: tcp, tls: TLSConfig{Mode: TLSVerifyCA, CA: client.KeyFile}, bad: true},
		{name: "bad TLS version", db: tcp, tls: TLSConfig{Mode: TLSRequired, MinVersion: "SSLv3"}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db
			db.Users = map[Role]Credential{App: {User: "vt_app", NoTLS: tc.noTLS}}
			db.TLS = tc.tls
			if err := db.TLS.Validate(); (err != nil) != tc.bad {
				t.Fatalf("Validate: %v, want bad=%v", err, tc.bad)
			}
			got, err := db.ClientTLS(App)
			if tc.bad {
				if err == nil && got != nil {
					t.Fatal("an unusable setting built a TLS configuration")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.wantTLS {
				t.Fatalf("TLS on = %v, want %v", got != nil, tc.wantTLS)
			}
			if got == nil {
				return
			}
			if got.InsecureSkipVerify != tc.skipVerify || got.ServerName != tc.serverName || got.MinVersion != tls.VersionTLS12 {
				t.Fatalf("skipVerify %v serverName %q min %x", got.InsecureSkipVerify, got.ServerName, got.MinVersion)
			}
			if tc.tls.Mode == TLSVerifyCA && got.VerifyConnection == nil {
				t.Fatal("verify_ca without a chain check")
			}
			if tc.tls.Cert != "" && len(got.Certificates) != 1 {
				t.Fatal("client certificate not loaded")
			}
			if dc := db.DriverConfig(App, ""); dc.TLS == nil {
				t.Fatal("the driver configuration has no TLS")
			}
		})
	}
}
