package mysqlconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults applied by Connect to zero Config fields.
const (
	DefaultCharset        = "utf8mb4"
	DefaultConnectTimeout = 5 * time.Second
	DefaultCancelGrace    = time.Second
)

// Config says where the server is and how to log in. Zero values take the
// defaults above; Validate reports settings that cannot work.
type Config struct {
	// Network is "tcp" (Address is host:port) or "unix" (Address is the socket
	// path). Empty: "unix" when Address starts with '/', else "tcp".
	Network string
	Address string

	User     string
	Password string
	// PasswordSource, when set, is asked for the password at every Connect instead of
	// Password (a credentials file re-read on SIGHUP applies to new connections).
	PasswordSource func() string
	DBName         string // default database; empty: none

	// TLS, when set, encrypts the connection: go-mysql sends the SSL request in the
	// handshake and the Conn then reads and writes through the TLS session. A server that
	// does not offer TLS is refused. nil: plain text.
	TLS *tls.Config

	// Charset is the connection character set, or a collation. A character
	// set selects the collation MariaDB uses by default for it (utf8mb4 →
	// utf8mb4_general_ci, id 45, the same as vttablet against MariaDB);
	// against MySQL 8.0, set "utf8mb4_0900_ai_ci" to get vttablet's 255.
	// It is sent in the handshake (no SET NAMES round trip), so only
	// collations with ids below 256 are accepted; see Collations.
	Charset string

	// ClientFoundRows sets CLIENT_FOUND_ROWS: UPDATE reports matched rather
	// than changed rows (Vitess's FoundRowsPool).
	ClientFoundRows bool
	// MultiStatements sets CLIENT_MULTI_STATEMENTS, allowing several
	// statements separated by ';' in one Execute (which then returns
	// ErrMultipleResults). CLIENT_MULTI_RESULTS is always set, so CALL works.
	MultiStatements bool

	// QueryInfo keeps the OK packet's info message ("Rows matched: 1
	// Changed: 1  Warnings: 0") in QueryResult.Info. vttablet only does with
	// --db-conn-query-info (default false), so by default Info stays empty.
	QueryInfo bool

	// ConnectTimeout bounds dialing and the handshake. Default 5s.
	ConnectTimeout time.Duration
	// CancelGrace is how long a statement whose context is done may keep
	// waiting for the server to end it (the caller is expected to send KILL
	// QUERY from another connection; the server then answers with error 1317
	// and the connection stays usable). When the grace expires first, the
	// connection is closed and the statement fails with CR_SERVER_LOST
	// wrapping the context's error. Default 1s; there is no way to set 0.
	CancelGrace time.Duration
}

// collation is a connection collation the handshake can select.
type collation struct {
	name string // as go-mysql (TiDB's collation table) spells it
	id   uint8
}

// lookupCollation maps a Charset setting (charset or collation name) to the
// collation sent in the handshake. The table is fixed: these ids are the same
// on MariaDB and MySQL (except utf8mb4_0900_ai_ci, MySQL 8 only).
func lookupCollation(charset string) (collation, bool) {
	switch strings.ToLower(charset) {
	case "utf8mb4", "utf8mb4_general_ci":
		return collation{"utf8mb4_general_ci", 45}, true
	case "utf8mb4_bin":
		return collation{"utf8mb4_bin", 46}, true
	case "utf8mb4_unicode_ci":
		return collation{"utf8mb4_unicode_ci", 224}, true
	case "utf8mb4_0900_ai_ci":
		return collation{"utf8mb4_0900_ai_ci", 255}, true
	case "utf8", "utf8mb3", "utf8_general_ci", "utf8mb3_general_ci":
		return collation{"utf8_general_ci", 33}, true
	case "utf8_bin", "utf8mb3_bin":
		return collation{"utf8_bin", 83}, true
	case "latin1", "latin1_swedish_ci":
		return collation{"latin1_swedish_ci", 8}, true
	case "latin1_bin":
		return collation{"latin1_bin", 47}, true
	case "ascii", "ascii_general_ci":
		return collation{"ascii_general_ci", 11}, true
	case "binary":
		return collation{"binary", 63}, true
	}
	return collation{}, false
}

// Collations lists the accepted Charset values, for error messages and docs.
const Collations = "utf8mb4, utf8mb4_general_ci, utf8mb4_bin, utf8mb4_unicode_ci, utf8mb4_0900_ai_ci, " +
	"utf8, utf8mb3, utf8_general_ci, utf8_bin, latin1, latin1_swedish_ci, latin1_bin, ascii, binary"

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = "tcp"
		if strings.HasPrefix(c.Address, "/") {
			c.Network = "unix"
		}
	}
	if c.Charset == "" {
		c.Charset = DefaultCharset
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.CancelGrace == 0 {
		c.CancelGrace = DefaultCancelGrace
	}
	return c
}

// Validate reports the first setting that cannot work (zero values are valid:
// they take the defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch c.Network {
	case "unix":
		if c.Address == "" {
			return errors.New("mysqlconn: Address (the unix socket path) must be set")
		}
	case "tcp":
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("mysqlconn: Address %q must be host:port for tcp: %w", c.Address, err)
		}
	default:
		return fmt.Errorf("mysqlconn: Network %q must be \"tcp\" or \"unix\"", c.Network)
	}
	if c.User == "" {
		return errors.New("mysqlconn: User must be set")
	}
	if _, ok := lookupCollation(c.Charset); !ok {
		return fmt.Errorf("mysqlconn: Charset %q is not supported (use one of: %s)", c.Charset, Collations)
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("mysqlconn: ConnectTimeout must be > 0 (got %v)", c.ConnectTimeout)
	}
	if c.CancelGrace < 0 {
		return fmt.Errorf("mysqlconn: CancelGrace must be > 0 (got %v)", c.CancelGrace)
	}
	return nil
}
