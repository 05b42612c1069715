// Package dbconfig holds the parameters tabletd uses to connect to its MySQL or MariaDB server as each Vitess database user.
package dbconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Role names a Vitess database user; vttablet's flags are --db-<role>-user and --db-<role>-password.
type Role string

// The roles tabletd connects as.
const (
	App      Role = "app"
	Dba      Role = "dba"
	AllPrivs Role = "allprivs"
	Filtered Role = "filtered"
	Repl     Role = "repl"
)

// Roles lists every role, in flag order.
var Roles = []Role{App, Dba, AllPrivs, Filtered, Repl}

// Credential is one user's name and password.
type Credential struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// NoTLS keeps this user's connections in plain text whatever TLS says
	// (--db-<role>-use-ssl=false).
	NoTLS bool `yaml:"noTLS"`
}

// Config says where the server is and how each role logs in.
type Config struct {
	Host        string              `yaml:"host"`   // --db-host; empty with Socket set = unix socket
	Port        int                 `yaml:"port"`   // --db-port
	Socket      string              `yaml:"socket"` // --db-socket; preferred over Host:Port when set
	Charset     string              `yaml:"charset"`
	Users       map[Role]Credential `yaml:"users"`
	DialTimeout time.Duration       `yaml:"dialTimeout"`
	// TLS encrypts the connections (--db-ssl-*); the zero value is plain text.
	TLS TLSConfig `yaml:"tls"`
	// CredentialsFile, when set, gives the password of every user it lists, read at each
	// new connection (--db-credentials-file; re-read on SIGHUP). See Password.
	CredentialsFile *CredentialsFile `yaml:"-"`
}

// Default returns vttablet's defaults: user vt_<role>, empty password, utf8mb4.
func Default() Config {
	c := Config{Port: 3306, Charset: "utf8mb4", DialTimeout: 5 * time.Second, Users: map[Role]Credential{}}
	for _, r := range Roles {
		c.Users[r] = Credential{User: "vt_" + string(r)}
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Socket == "" && c.Host == "" {
		return errors.New("--db-host or --db-socket must be set")
	}
	if c.Socket == "" && (c.Port <= 0 || c.Port > 65535) {
		return fmt.Errorf("--db-port must be 1-65535 (got %d)", c.Port)
	}
	for _, r := range Roles {
		if c.Users[r].User == "" {
			return fmt.Errorf("--db-%s-user must not be empty", r)
		}
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("db dial timeout must be > 0 (got %v)", c.DialTimeout)
	}
	return c.TLS.Validate()
}

// Address is host:port, or the socket path when a socket is used; for display.
func (c Config) Address() string {
	if c.Socket != "" {
		return c.Socket
	}
	return c.Host + ":" + strconv.Itoa(c.Port)
}

// DriverConfig returns a go-sql-driver configuration for role, connected to dbName
// (empty: no default database). The password is read again before every new connection
// (a rotated credentials file applies); TLS follows c.TLS (Validate has checked it: an
// unusable TLS setting here leaves TLS on with nothing trusted, so connections fail rather
// than go out in plain text).
func (c Config) DriverConfig(role Role, dbName string) *mysql.Config {
	cred := c.Users[role]
	mc := mysql.NewConfig()
	mc.User = cred.User
	mc.Passwd = c.Password(role)
	if c.CredentialsFile != nil {
		_ = mc.Apply(mysql.BeforeConnect(func(_ context.Context, cfg *mysql.Config) error {
			cfg.Passwd = c.Password(role)
			return nil
		}))
	}
	if tc, err := c.ClientTLS(role); err != nil {
		mc.TLS = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	} else if tc != nil {
		mc.TLS = tc
		mc.AllowFallbackToPlaintext = c.TLS.EffectiveMode() == TLSPreferred
	}
	if c.Socket != "" {
		mc.Net, mc.Addr = "unix", c.Socket
	} else {
		mc.Net, mc.Addr = "tcp", c.Address()
	}
	mc.DBName = dbName
	mc.Timeout = c.DialTimeout
	mc.InterpolateParams = true
	if c.Charset != "" {
		// Charset always returns nil; it only records the SET NAMES to send.
		_ = mc.Apply(mysql.Charset(c.Charset, ""))
	}
	return mc
}
