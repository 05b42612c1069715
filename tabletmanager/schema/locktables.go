package schema

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// unlockTimeout bounds UNLOCK TABLES; closing the session releases the locks in any case.
const unlockTimeout = 5 * time.Second

// tableLock is the session holding the read lock of LockTables, and the goroutine that
// releases it when LockTablesTimeout passes first. Whoever takes the lock out of
// Engine.lock (under Engine.mu) owns releasing it: exactly one of UnlockTables, the timeout
// and Close does.
type tableLock struct {
	conn *mysqlconn.Conn
	stop chan struct{} // closed by release: the watcher returns without unlocking
	done chan struct{} // closed when the watcher has returned
}

// LockTables takes a global read lock on a dedicated dba session (FLUSH TABLES WITH READ
// LOCK, or LOCK TABLES … READ on every table of the database when the user may not flush),
// pausing writes and replication until UnlockTables — or until LockTablesTimeout, after
// which the lock is released and the error logged, as in vttablet. Locking twice fails.
func (e *Engine) LockTables(ctx context.Context) error {
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the tablet is shutting down")
	case e.lock != nil:
		e.mu.Unlock()
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "tables already locked on this tablet")
	}
	// Reserve the slot while the lock is taken without holding mu: FLUSH TABLES WITH READ
	// LOCK waits for running statements, and UnlockTables and Close must not wait behind it.
	l := &tableLock{stop: make(chan struct{}), done: make(chan struct{})}
	e.lock = l
	e.mu.Unlock()

	conn, err := e.takeReadLock(ctx)
	e.mu.Lock()
	if err != nil || e.lock != l { // failed, or Close came meanwhile
		if e.lock == l {
			e.lock = nil
		}
		e.mu.Unlock()
		if conn != nil {
			_ = conn.Close() // ends the session and with it its lock
		}
		if err == nil {
			err = rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the tablet is shutting down")
		}
		return err
	}
	l.conn = conn
	go e.watchLock(l)
	e.mu.Unlock()
	e.log.Info("tables locked", zap.Uint32("connection", conn.ID()), zap.Duration("timeout", e.cfg.LockTablesTimeout))
	return nil
}

// takeReadLock opens the locking session and locks.
func (e *Engine) takeReadLock(ctx context.Context) (*mysqlconn.Conn, error) {
	c, err := e.connect(ctx, roleDba, false)
	if err != nil {
		return nil, err
	}
	ftwrl := exec(ctx, c, "FLUSH TABLES WITH READ LOCK")
	if ftwrl == nil {
		return c, nil
	}
	e.log.Warn("FLUSH TABLES WITH READ LOCK failed, locking each table with LOCK TABLES", zap.Error(ftwrl))
	if err := e.lockEachTable(ctx, c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// lockEachTable is vttablet's fallback: LOCK TABLES <every table and view> READ.
func (e *Engine) lockEachTable(ctx context.Context, c *mysqlconn.Conn) error {
	qr, err := fetch(ctx, c, "SELECT table_name FROM information_schema.tables WHERE table_schema = "+quoteString(e.cfg.DBName), -1)
	if err != nil {
		return err
	}
	if len(qr.Rows) == 0 {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "cannot lock tables: FLUSH TABLES WITH READ LOCK is not allowed and database %s has no tables to LOCK TABLES", e.cfg.DBName)
	}
	locks := make([]string, len(qr.Rows))
	for i, r := range qr.Rows {
		locks[i] = quoteIdent(rowValues(r)[0].s) + " READ"
	}
	if err := exec(ctx, c, "USE "+quoteIdent(e.cfg.DBName)); err != nil {
		return err
	}
	return exec(ctx, c, "LOCK TABLES "+strings.Join(locks, ", "))
}

// watchLock releases l when the timeout passes before anyone else releases it.
func (e *Engine) watchLock(l *tableLock) {
	defer close(l.done)
	t := time.NewTimer(e.cfg.LockTablesTimeout)
	defer t.Stop()
	select {
	case <-l.stop:
		return
	case <-t.C:
	}
	e.mu.Lock()
	mine := e.lock == l
	if mine {
		e.lock = nil
	}
	e.mu.Unlock()
	if mine {
		e.log.Error("table lock timed out and released the lock - something went wrong", zap.Duration("timeout", e.cfg.LockTablesTimeout))
		l.unlock(e.log)
	}
}

// UnlockTables releases the lock LockTables took.
func (e *Engine) UnlockTables(context.Context) error {
	e.mu.Lock()
	l := e.lock
	if l == nil || l.conn == nil { // not locked, or still being locked
		e.mu.Unlock()
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "tables were not locked")
	}
	e.lock = nil
	e.mu.Unlock()
	l.release(e.log, "UnlockTables")
	return nil
}

// release stops the watcher, unlocks and waits for the watcher to return.
func (l *tableLock) release(log *zap.Logger, why string) {
	if l.conn == nil {
		return // LockTables in flight: it sees the lock taken away and ends the session itself
	}
	close(l.stop)
	l.unlock(log)
	<-l.done
	log.Info("tables unlocked", zap.String("by", why))
}

// unlock ends the locking session. UNLOCK TABLES is sent first; closing the session
// releases the lock even if that fails.
func (l *tableLock) unlock(log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	if err := exec(ctx, l.conn, "UNLOCK TABLES"); err != nil {
		log.Warn("UNLOCK TABLES failed; closing the session releases the lock", zap.Error(err))
	}
	_ = l.conn.Close()
}
