package mysqlconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Server status flags (OK and EOF packets), as returned by LastStatusFlags.
const (
	StatusInTrans           uint16 = 0x0001 // SERVER_STATUS_IN_TRANS
	StatusAutocommit        uint16 = 0x0002 // SERVER_STATUS_AUTOCOMMIT
	StatusMoreResultsExists uint16 = 0x0008 // SERVER_MORE_RESULTS_EXISTS
	StatusInTransReadonly   uint16 = 0x2000 // SERVER_STATUS_IN_TRANS_READONLY
)

const (
	comQuit  = 0x01
	comQuery = 0x03

	// handshakeBufferSize is go-mysql's read buffer during the handshake
	// (its default, 64 KiB, would be garbage as soon as we take over).
	handshakeBufferSize = 4 << 10
	// quitTimeout bounds sending COM_QUIT in Close.
	quitTimeout = 100 * time.Millisecond
	// mariaDBVersionPrefix is what MariaDB 10.x puts before its version in the
	// handshake so that old replication clients accept it.
	mariaDBVersionPrefix = "5.5.5-"
)

// Conn is one MySQL connection. It runs one statement at a time: Execute and
// Stream must not be called concurrently. Close, IsClosed, ID and
// ServerVersion may be called from any goroutine.
type Conn struct {
	cfg     Config
	nc      net.Conn
	w       wire
	id      uint32
	version string
	strs    stringPool // scratch for the field strings of one result
	rows    rowBuffer  // scratch for the rows of one result

	// warnings and status come from the last OK or EOF packet.
	warnings, status uint16

	closed atomic.Bool
	inUse  atomic.Bool // a statement is running (Close must not write COM_QUIT)

	// Cancellation of the running statement, see begin.
	ctx       context.Context
	stopWatch func() bool
	watchWG   sync.WaitGroup
	canceled  atomic.Bool
	onCancel  func() // c.cancel, bound once
	// killHook, when set, runs (in the cancellation callback's goroutine) before the grace
	// deadline is set: the owner sends KILL from another connection there.
	killHook func(c *Conn, cause error)
	// lastCanceled: the previous statement's ctx ended while it ran.
	lastCanceled bool
}

// Connect dials the server and logs in. go-mysql does the handshake
// (capabilities, auth plugins: mysql_native_password, caching_sha2_password,
// sha256_password, client_ed25519); the Conn then owns the socket. Errors are
// *SQLError: the server's (e.g. 1045 access denied), or 2002/2003 when the
// server cannot be reached, 2013 when the connection broke during the handshake.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var d dialState
	stop := context.AfterFunc(ctx, d.abort)
	defer stop()
	password := cfg.Password
	if cfg.PasswordSource != nil {
		password = cfg.PasswordSource()
	}
	gc, err := client.ConnectWithDialer(ctx, cfg.Network, cfg.Address, cfg.User, password, cfg.DBName,
		d.dial, cfg.handshakeOption())
	if err != nil {
		return nil, connectError(ctx, cfg, d.wasDialed(), err)
	}
	nc := gc.Conn.Conn
	if !stop() {
		_ = nc.Close()
		return nil, connectError(ctx, cfg, true, ctx.Err())
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		_ = nc.Close()
		return nil, clientError(CRServerLost, "mysqlconn: clear handshake deadline", err)
	}
	return newConn(cfg, nc, gc.GetConnectionID(), gc.GetServerVersion()), nil
}

// newConn wraps a logged-in socket; cfg has its defaults applied.
func newConn(cfg Config, nc net.Conn, id uint32, version string) *Conn {
	c := &Conn{
		cfg:     cfg,
		nc:      nc,
		w:       newWire(nc),
		id:      id,
		version: strings.TrimPrefix(version, mariaDBVersionPrefix),
	}
	c.onCancel = c.cancel
	return c
}

// handshakeOption configures go-mysql's handshake: collation, capabilities,
// and a plain COM_QUERY format (no query attributes).
func (c Config) handshakeOption() client.Option {
	coll, _ := lookupCollation(c.Charset)
	return func(gc *client.Conn) error {
		gc.BufferSize = handshakeBufferSize
		gc.SetCapability(gomysql.CLIENT_MULTI_RESULTS)
		if c.ClientFoundRows {
			gc.SetCapability(gomysql.CLIENT_FOUND_ROWS)
		}
		if c.MultiStatements {
			gc.SetCapability(gomysql.CLIENT_MULTI_STATEMENTS)
		}
		gc.UnsetCapability(gomysql.CLIENT_QUERY_ATTRIBUTES)
		if c.TLS != nil {
			gc.SetTLSConfig(c.TLS.Clone())
		}
		return gc.SetCollation(coll.name)
	}
}

// dialState lets a context cancellation interrupt the handshake: it puts the
// socket's deadline in the past.
type dialState struct {
	mu      sync.Mutex
	conn    net.Conn
	aborted bool
}

func (d *dialState) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn = nc
	if d.aborted {
		deadline = time.Unix(1, 0)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return nc, nil
}

func (d *dialState) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	if d.conn != nil {
		_ = d.conn.SetDeadline(time.Unix(1, 0))
	}
}

func (d *dialState) wasDialed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn != nil
}

// connectError converts a go-mysql connect error to a SQLError.
func connectError(ctx context.Context, cfg Config, dialed bool, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	var me *gomysql.MyError
	switch {
	case errors.As(err, &me):
		// go-mysql's strings alias its packet buffer: copy them.
		return &SQLError{Num: me.Code, State: strings.Clone(me.State), Message: strings.Clone(me.Message)}
	case !dialed && cfg.Network == "unix":
		return clientError(CRConnectionError, "mysqlconn: cannot connect to unix socket "+cfg.Address, err)
	case !dialed:
		return clientError(CRConnHostError, "mysqlconn: cannot connect to "+cfg.Address, err)
	case errors.Is(err, gomysql.ErrBadConn), errors.Is(err, io.EOF), isNetError(err), ctx.Err() != nil:
		return clientError(CRServerLost, "mysqlconn: lost connection to "+cfg.Address+" during the handshake", err)
	}
	return clientError(CRServerHandshakeErr, "mysqlconn: handshake with "+cfg.Address+" failed", err)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// ID is the server's connection id (for KILL from another connection).
func (c *Conn) ID() uint32 { return c.id }

// ServerVersion is the version the server announced, without MariaDB 10's
// "5.5.5-" prefix (e.g. "10.11.19-MariaDB-0+deb12u1-log").
func (c *Conn) ServerVersion() string { return c.version }

// LastWarnings is the warning count of the last statement's final OK or EOF packet.
func (c *Conn) LastWarnings() uint16 { return c.warnings }

// LastStatusFlags are the server status flags (Status*) of the last
// statement's final OK or EOF packet, e.g. StatusInTrans.
func (c *Conn) LastStatusFlags() uint16 { return c.status }

// IsClosed reports a closed or broken connection: the pool must discard it.
func (c *Conn) IsClosed() bool { return c.closed.Load() }

// Close closes the connection, sending COM_QUIT first when no statement is
// running (so the server does not log an aborted connection). A statement
// running in another goroutine fails with CR_SERVER_LOST. Closing twice is a no-op.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if !c.inUse.Load() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(quitTimeout))
		_ = c.w.writeCommand(comQuit, "")
	}
	if err := c.nc.Close(); err != nil {
		return fmt.Errorf("mysqlconn: close: %w", err)
	}
	return nil
}

// begin starts a statement. While it runs, a done ctx gives the server
// CancelGrace to end it (the caller sends KILL QUERY): the socket deadline is
// moved to now+CancelGrace, so a read blocked on the socket returns either
// the server's error packet or, after the grace, a timeout that closes the
// connection. context.AfterFunc costs no goroutine while the statement runs.
func (c *Conn) begin(ctx context.Context) error {
	c.inUse.Store(true)
	if c.closed.Load() {
		c.inUse.Store(false)
		return errClosed()
	}
	if err := ctx.Err(); err != nil {
		c.inUse.Store(false)
		return fmt.Errorf("mysqlconn: statement not sent: %w", err)
	}
	c.ctx = ctx
	if ctx.Done() != nil {
		c.watchWG.Add(1)
		c.stopWatch = context.AfterFunc(ctx, c.onCancel)
	}
	return nil
}

// end finishes a statement: it waits for a cancellation callback that already
// started (so it cannot touch the next statement's deadline) and clears the
// deadline it set.
func (c *Conn) end() {
	if c.stopWatch != nil {
		if c.stopWatch() {
			c.watchWG.Done()
		} else {
			c.watchWG.Wait()
		}
		c.stopWatch = nil
	}
	c.lastCanceled = c.canceled.Swap(false)
	if c.lastCanceled && !c.closed.Load() {
		if err := c.nc.SetDeadline(time.Time{}); err != nil {
			c.closeConn()
		}
	}
	c.ctx = nil
	c.w.release()
	c.rows.release()
	c.inUse.Store(false)
}

// cancel runs (in its own goroutine) when the running statement's ctx is done.
func (c *Conn) cancel() {
	defer c.watchWG.Done()
	c.canceled.Store(true)
	if c.killHook != nil {
		c.killHook(c, c.ctx.Err())
	}
	_ = c.nc.SetDeadline(time.Now().Add(c.cfg.CancelGrace))
}

// SetKillHook installs f, called once when a running statement's context ends (cause is the
// context's error), before the connection waits CancelGrace for the server: the owner sends
// KILL QUERY or KILL from another connection there. The statement's call returns only after
// f returned. Set it before the connection is used; it is not safe to change concurrently
// with a statement.
func (c *Conn) SetKillHook(f func(c *Conn, cause error)) { c.killHook = f }

// Canceled reports whether the context of the last finished statement ended while it ran
// (so the kill hook ran, and a kill may have hit the connection).
func (c *Conn) Canceled() bool { return c.lastCanceled }

// closeConn marks the connection broken and closes the socket.
func (c *Conn) closeConn() {
	if c.closed.CompareAndSwap(false, true) {
		_ = c.nc.Close()
	}
}

// ioError closes the connection after a failed read or write and converts the
// failure to a SQLError: 2006 when the request could not be sent, 2013 when the
// answer could not be read (wrapping the ctx's error when the statement was
// cancelled and the server did not end it within the grace), 2027/2014 for
// protocol violations.
func (c *Conn) ioError(err error, writing bool) error {
	c.closeConn()
	var pe *protocolError
	if errors.As(err, &pe) {
		return clientError(pe.num, "mysqlconn: "+pe.msg+"; connection closed", nil)
	}
	var ne net.Error
	if c.canceled.Load() && c.ctx != nil && c.ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout() {
		return clientError(CRServerLost, fmt.Sprintf("lost connection to MySQL server during query: "+
			"statement cancelled and not ended by the server within %v; connection closed", c.cfg.CancelGrace), c.ctx.Err())
	}
	if writing {
		return clientError(CRServerGone, "MySQL server has gone away", err)
	}
	return clientError(CRServerLost, "lost connection to MySQL server during query", err)
}
