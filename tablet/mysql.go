package tablet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/sidecar"
	"github.com/tabletd/tabletd/tabletserver"
)

// mysqlServer is tabletd's control connection to its database server, as the dba user. It
// probes health for the query service and applies read-only for the tablet manager.
type mysqlServer struct {
	db *sql.DB
	// app connects as the app user to the tablet's database, never reusing a connection: a
	// probe through it proves that the database exists and the query service's user can log
	// in — what every query needs, and what a dba-only probe cannot see.
	app     *sql.DB
	dbName  string
	appUser string

	mu   sync.Mutex
	info *replication.ServerInfo // detected flavor; reset after an error (mysqld may have been replaced)
}

func openMySQL(cfg dbconfig.Config, dbName string) (*mysqlServer, error) {
	conn, err := mysql.NewConnector(cfg.DriverConfig(dbconfig.Dba, ""))
	if err != nil {
		return nil, fmt.Errorf("--db-dba-user settings: %w", err)
	}
	appConn, err := mysql.NewConnector(cfg.DriverConfig(dbconfig.App, dbName))
	if err != nil {
		return nil, fmt.Errorf("--db-app-user settings: %w", err)
	}
	db := sql.OpenDB(conn) // connects lazily: an unreachable MySQL is a state, not a start failure
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	app := sql.OpenDB(appConn)
	app.SetMaxOpenConns(1)
	app.SetMaxIdleConns(0)
	return &mysqlServer{db: db, app: app, dbName: dbName, appUser: cfg.Users[dbconfig.App].User}, nil
}

func (m *mysqlServer) Close() error {
	_ = m.app.Close()
	return m.db.Close()
}

func (m *mysqlServer) detect(ctx context.Context) (replication.ServerInfo, error) {
	m.mu.Lock()
	info := m.info
	m.mu.Unlock()
	if info != nil {
		return *info, nil
	}
	got, err := replication.Detect(ctx, m.db)
	if err != nil {
		return replication.ServerInfo{}, err
	}
	m.mu.Lock()
	m.info = &got
	m.mu.Unlock()
	return got, nil
}

func (m *mysqlServer) forget() {
	m.mu.Lock()
	m.info = nil
	m.mu.Unlock()
}

// Probe implements tabletserver.Prober.
func (m *mysqlServer) Probe(ctx context.Context, primary bool) tabletserver.MySQLHealth {
	info, err := m.detect(ctx)
	if err != nil {
		m.forget()
		return tabletserver.MySQLHealth{Err: cause(err)}
	}
	h := tabletserver.MySQLHealth{Flavor: info.Flavor.String(), Version: info.VersionString}
	var uptime int64
	if err := m.db.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'").Scan(&uptime); err != nil {
		m.forget()
		return tabletserver.MySQLHealth{Err: cause(err)}
	}
	h.StartedAt = time.Now().Add(-time.Duration(uptime) * time.Second)
	h.AppProblem = m.appProblem(ctx)
	if pos, err := replication.PrimaryPosition(ctx, m.db, info.Flavor); err == nil {
		h.Position = pos.String()
	} else if ctx.Err() != nil || isConnError(err) {
		m.forget()
		return tabletserver.MySQLHealth{Err: cause(err)}
	}
	if ro, err := replication.ReadOnly(ctx, m.db); err == nil {
		h.ReadOnly = ro
	}
	if primary {
		return h
	}
	st, err := replication.ReplicaStatus(ctx, m.db, info.Flavor)
	if err != nil {
		if ctx.Err() != nil || isConnError(err) {
			m.forget()
			return tabletserver.MySQLHealth{Err: cause(err)}
		}
		h.ReplicationProblem = "cannot read replication status: " + err.Error()
		return h
	}
	h.ReplicationConfigured = st.Configured
	h.LagKnown, h.Lag = st.Configured && st.LagKnown, st.Lag
	if !st.Position.IsZero() {
		h.Position = st.Position.String()
	}
	if st.Configured && !h.LagKnown {
		h.ReplicationProblem = replicationProblem(st)
	}
	return h
}

// appProblem logs in as the app user to the tablet's database; "" when that works, else
// what an operator must fix.
func (m *mysqlServer) appProblem(ctx context.Context) string {
	conn, err := m.app.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
		_ = conn.Close()
	}
	if err == nil {
		return ""
	}
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == 1049:
		return fmt.Sprintf("database %s does not exist (errno 1049): the tablet serves once it is created "+
			"(vtctldclient InitShardPrimary / PlannedReparentShard create it, or CREATE DATABASE `%s`)", m.dbName, m.dbName)
	case errors.As(err, &me):
		return fmt.Sprintf("the app user %s cannot use database %s: %s (errno %d)", m.appUser, m.dbName, me.Message, me.Number)
	}
	return fmt.Sprintf("the app user %s cannot connect: %v", m.appUser, cause(err))
}

func replicationProblem(st replication.Status) string {
	var parts []string
	if !st.IOThreadRunning {
		parts = append(parts, "I/O thread "+strings.ToLower(orNo(st.IOThreadState)))
	}
	if !st.SQLThreadRunning {
		parts = append(parts, "SQL thread not running")
	}
	if st.LastIOError != "" {
		parts = append(parts, "last I/O error: "+st.LastIOError)
	}
	if st.LastSQLError != "" {
		parts = append(parts, "last SQL error: "+st.LastSQLError)
	}
	if len(parts) == 0 {
		return "the server reports no lag value"
	}
	return strings.Join(parts, "; ")
}

func orNo(s string) string {
	if s == "" || s == "No" {
		return "not running"
	}
	return s
}

// Info implements tabletmanager.MySQL: the detected server.
func (m *mysqlServer) Info(ctx context.Context) (replication.ServerInfo, error) {
	info, err := m.detect(ctx)
	if err != nil {
		m.forget()
	}
	return info, err
}

// DB implements tabletmanager.MySQL: the dba pool.
func (m *mysqlServer) DB() *sql.DB { return m.db }

// ensureSidecar creates what is missing of the sidecar schema (tabletmanager.Deps.EnsureSidecar).
func (m *mysqlServer) ensureSidecar(ctx context.Context, dbName string, local bool) error {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	mode := sidecar.Replicated
	if local {
		mode = sidecar.Local
	}
	_, err = sidecar.Ensure(ctx, conn, dbName, mode)
	return err
}

// SetReadOnly implements tabletmanager.MySQL; it changes the server only when needed.
func (m *mysqlServer) SetReadOnly(ctx context.Context, on bool) error {
	info, err := m.detect(ctx)
	if err != nil {
		m.forget()
		return err
	}
	if cur, err := replication.ReadOnly(ctx, m.db); err == nil && cur == on {
		return nil
	}
	return replication.SetReadOnly(ctx, m.db, info.Flavor, on)
}

// isConnError reports errors meaning the server connection is gone rather than a query failing.
func isConnError(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 2006 || me.Number == 2013
	}
	return true
}

// cause keeps what an operator needs from a probe error: the network failure or the server's
// error, without the probe's SQL around it. A stable text also keeps the health record (and
// the log) from changing with every probe while MySQL is down.
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer within the probe timeout")
	}
	return err
}
