package engine

import (
	"context"
	"errors"
	"time"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// streamSession is what every stream connection sets first, as vttablet's vreplication does
// (controller.go setDBClientSettings): timestamps travel as UTC text, values are bytes that
// are never re-encoded (names binary), a 0 in an AUTO_INCREMENT column stays 0, and foreign
// keys are not checked (the source checked them; the copy and the player write tables in
// an order that need not satisfy them).
var streamSession = []string{
	"set @@session.time_zone = '+00:00'",
	"set names 'binary'",
	"set @@session.sql_mode = CONCAT(@@session.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
	"set @@session.foreign_key_checks = 0",
}

// dbConn is one MySQL connection of a stream or of Exec. It reconnects by itself between
// transactions; a connection lost inside a transaction fails the transaction.
//
// A stream connection (newStreamConn) sends the statements of a transaction in as few round
// trips as it can: begin, queued statements and commit travel together as one
// multi-statement packet, flushed when the transaction ends, when another statement needs
// its result, or when the queue grows past maxQueued.
type dbConn struct {
	cfg     mysqlconn.Config
	setup   []string
	c       *mysqlconn.Conn
	inTx    bool
	pending []byte // statements of the open transaction not sent yet ("begin" first, if not sent)
}

// maxQueued bounds the statements a stream connection holds before sending them.
const maxQueued = 1 << 20

func newConn(cfg mysqlconn.Config, setup ...string) *dbConn {
	return &dbConn{cfg: cfg, setup: setup}
}

// newStreamConn is a connection that batches a transaction's statements.
func newStreamConn(cfg mysqlconn.Config, setup ...string) *dbConn {
	cfg.MultiStatements = true
	return &dbConn{cfg: cfg, setup: setup}
}

// errTxLost is returned when the connection broke inside a transaction: its writes are gone.
var errTxLost = rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "lost the MySQL connection inside a transaction")

func (d *dbConn) ensure(ctx context.Context) error {
	if d.c != nil && !d.c.IsClosed() {
		return nil
	}
	if d.inTx && len(d.pending) == 0 || d.inTx && !startsWithBegin(d.pending) {
		d.inTx, d.pending = false, nil
		return errTxLost
	}
	c, err := mysqlconn.Connect(ctx, d.cfg)
	if err != nil {
		return mysqlError(err, "cannot connect to MySQL as "+d.cfg.User)
	}
	for _, s := range d.setup {
		if _, err := c.Execute(ctx, s, 0, mysqlconn.FieldsNone); err != nil {
			_ = c.Close()
			return mysqlError(err, s)
		}
	}
	d.c = c
	return nil
}

func startsWithBegin(b []byte) bool { return len(b) >= 5 && string(b[:5]) == "begin" }

// run sends sql (one statement, or several from the queue) and returns the last result.
func (d *dbConn) run(ctx context.Context, sql string, multi bool) (*querypb.QueryResult, error) {
	if err := d.ensure(ctx); err != nil {
		return nil, err
	}
	qr, err := d.c.Execute(ctx, sql, 0, mysqlconn.FieldsTypeAndName)
	if err != nil && multi && errors.Is(err, mysqlconn.ErrMultipleResults) {
		var se *mysqlconn.SQLError
		if !errors.As(err, &se) {
			return &querypb.QueryResult{}, nil // every statement succeeded
		}
	}
	if err != nil {
		if d.c.IsClosed() && d.inTx {
			d.inTx, d.pending = false, nil
			return nil, rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, mysqlError(err, ""), "lost the MySQL connection inside a transaction")
		}
		return nil, mysqlError(err, "")
	}
	return qr, nil
}

// flush sends the queued statements.
func (d *dbConn) flush(ctx context.Context) error {
	if len(d.pending) == 0 {
		return nil
	}
	// Connect first: with "begin" still queued, a new connection loses nothing.
	if err := d.ensure(ctx); err != nil {
		return err
	}
	q := string(d.pending)
	d.pending = d.pending[:0]
	_, err := d.run(ctx, q, true)
	return err
}

// queue adds a statement of the open transaction; it is sent with the next flush.
func (d *dbConn) queue(ctx context.Context, sql string) error {
	if !d.cfg.MultiStatements {
		_, err := d.exec(ctx, sql)
		return err
	}
	if len(d.pending) > 0 {
		d.pending = append(d.pending, ';')
	}
	d.pending = append(d.pending, sql...)
	if len(d.pending) >= maxQueued {
		return d.flush(ctx)
	}
	return nil
}

// exec runs one statement (after what is queued); results carry names and types.
func (d *dbConn) exec(ctx context.Context, sql string) (*querypb.QueryResult, error) {
	if err := d.flush(ctx); err != nil {
		return nil, err
	}
	return d.run(ctx, sql, false)
}

// execAll runs statements in order, stopping at the first error.
func (d *dbConn) execAll(ctx context.Context, sqls ...string) error {
	for _, s := range sqls {
		if _, err := d.exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// begin opens a transaction; on a stream connection "begin" is only queued.
func (d *dbConn) begin(ctx context.Context) error {
	if d.inTx {
		return nil
	}
	if d.cfg.MultiStatements {
		d.pending = append(d.pending[:0], "begin"...)
		d.inTx = true
		return nil
	}
	if _, err := d.exec(ctx, "begin"); err != nil {
		return err
	}
	d.inTx = true
	return nil
}

// commitTimeout bounds a commit once it is sent.
const commitTimeout = 30 * time.Second

// commit ends the transaction, sending what is queued with it.
//
// The commit is not cancelled with ctx. Cancelling would close the socket with the commit
// already on its way, and the server would still commit after the caller had moved on: a
// stopped stream (controller.stop returns) whose last transaction and position land later.
// VDiff reads the stream's position right after stopping it and syncs the source to it; a
// late commit put the target ahead of the source's snapshot (rows seen as extra on the
// target). So once a commit is sent its result is awaited, for at most commitTimeout.
func (d *dbConn) commit(ctx context.Context) error {
	if !d.inTx {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	var err error
	if d.cfg.MultiStatements {
		err = d.queue(ctx, "commit")
		if err == nil {
			err = d.flush(ctx)
		}
	} else {
		_, err = d.exec(ctx, "commit")
	}
	d.inTx, d.pending = false, d.pending[:0]
	return err
}

// rollback ends a transaction, if any, dropping what is queued; a failure closes the
// connection (its state is unknown).
func (d *dbConn) rollback() {
	if !d.inTx {
		return
	}
	d.inTx, d.pending = false, d.pending[:0]
	if d.c == nil || d.c.IsClosed() {
		return
	}
	if _, err := d.c.Execute(context.Background(), "rollback", 0, mysqlconn.FieldsNone); err != nil {
		_ = d.c.Close()
	}
}

func (d *dbConn) close() {
	d.inTx, d.pending = false, nil
	if d.c != nil {
		_ = d.c.Close()
		d.c = nil
	}
}

// mysqlError gives a MySQL error its vtrpc code and keeps the errno in its text.
func mysqlError(err error, what string) error {
	if err == nil {
		return nil
	}
	var re *rpcerr.Error
	if errors.As(err, &re) {
		return err
	}
	if _, _, ok := rpcerr.Errno(err); ok {
		return rpcerr.FromMySQL(err, what)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return rpcerr.Wrap(rpcerr.Code(err), err, "%s", what)
	}
	return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "%s", what)
}

// errno is the MySQL error number carried by err, 0 when none.
func errno(err error) uint16 {
	n, _, _ := rpcerr.Errno(err)
	return n
}
