package tabletmanager

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/topo"
)

// SetReplicationSource points this tablet's replication at parent (PRS, ERS, ReparentTablet,
// RestoreFromBackup). A PRIMARY first becomes REPLICA (a demoted primary re-pointed at the new
// one). Replication is (re)started when it was running, when the tablet was a primary, or when
// forceStart is set; then, if asked, it waits until waitPosition is applied and until the
// reparent journal row timeCreatedNS has arrived. A replica holding transactions the new source
// never had (errant GTIDs) is refused, naming them: it must not replicate (it would diverge or
// break) and must not be promoted.
func (m *Manager) SetReplicationSource(ctx context.Context, parent *topodatapb.TabletAlias, timeCreatedNS int64,
	waitPosition string, forceStart, semiSync bool, heartbeatInterval float64) error {
	m.action.Lock()
	defer m.action.Unlock()
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return err
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	var wait replication.Position
	if waitPosition != "" {
		if wait, err = parsePosition(waitPosition, flavor); err != nil {
			return err
		}
	}
	if parent == nil {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "Shard primaryAlias is nil")
	}
	src, err := m.sourceOf(ctx, parent)
	if err != nil {
		return err
	}
	src.HeartbeatInterval = time.Duration(heartbeatInterval * float64(time.Second))
	if err := m.refuseErrant(ctx, db, flavor, parent, src); err != nil {
		return err
	}
	wasPrimary := m.Tablet().Type == topodatapb.TabletType_PRIMARY
	if wasPrimary {
		if err := m.changeTypeLocked(ctx, topodatapb.TabletType_REPLICA); err != nil {
			return err
		}
	}
	tt := m.Tablet().Type
	if err := m.fixSemiSync(ctx, tt, action); err != nil {
		return err
	}
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	if err != nil {
		return mysqlErr(err, "cannot read the replication status")
	}
	running := st.Configured && (st.IOThreadRunning || st.SQLThreadRunning)
	start := running || forceStart || wasPrimary || !st.Configured
	switch {
	case !st.Configured || st.SourceHost != src.Host || st.SourcePort != src.Port || src.HeartbeatInterval != 0:
		if err := replication.SetSource(ctx, db, flavor, src, start); err != nil {
			return mysqlErr(err, "cannot point replication at "+topoAlias(parent))
		}
	case start:
		// Same source: restart so a stalled I/O thread reconnects at once.
		if err := replication.StopReplication(ctx, db, flavor); err != nil {
			return mysqlErr(err, "cannot stop replication")
		}
		if err := replication.StartReplication(ctx, db, flavor); err != nil {
			return mysqlErr(err, "cannot start replication")
		}
	}
	if start {
		m.setReplStopped(false)
	}
	m.qs.RunHealthCheck()
	if !start {
		return nil
	}
	if !wait.IsZero() {
		if err := replication.WaitForPosition(ctx, db, flavor, wait); err != nil {
			return mysqlErr(err, fmt.Sprintf("waiting for position %s", wait))
		}
	}
	return m.waitJournal(ctx, timeCreatedNS)
}

// sourceOf reads parent's MySQL address from its tablet record.
func (m *Manager) sourceOf(ctx context.Context, parent *topodatapb.TabletAlias) (replication.SourceParams, error) {
	ts := m.connectedTopo()
	if ts == nil {
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the topology is not reachable yet")
	}
	if parent == nil {
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "no parent tablet given")
	}
	pt, _, err := ts.GetTablet(ctx, parent)
	switch {
	case ts.IsNoNode(err) || errors.Is(err, topo.ErrNoNode):
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_NOT_FOUND,
			"parent tablet %s has no record in the topology", topoAlias(parent))
	case err != nil:
		return replication.SourceParams{}, rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot read the record of parent tablet %s", topoAlias(parent))
	case pt.MysqlHostname == "" || pt.MysqlPort == 0:
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"Shard primary has empty mysql hostname (parent tablet %s records no MySQL address)", topoAlias(parent))
	case pt.Keyspace != m.cfg.Keyspace || pt.Shard != m.cfg.Shard:
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
			"parent tablet %s belongs to %s/%s, this tablet to %s/%s", topoAlias(parent), pt.Keyspace, pt.Shard, m.cfg.Keyspace, m.cfg.Shard)
	case proto3Equal(pt.Alias, m.cfg.Alias):
		return replication.SourceParams{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "tablet %s cannot replicate from itself", topoAlias(parent))
	}
	return replication.SourceParams{Host: pt.MysqlHostname, Port: int(pt.MysqlPort), User: m.cfg.ReplUser,
		Password: m.cfg.ReplPassword, ConnectRetry: m.cfg.ReplConnectRetry}, nil
}

// refuseErrant compares this server's transactions with the new source's, read straight from
// the source's MySQL as the replication user (what replication itself will see, whatever
// tablet software runs beside it). An unreachable source is not a refusal: ERS re-points
// replicas while the old primary is gone, and replication itself reports a source it cannot
// reach.
func (m *Manager) refuseErrant(ctx context.Context, db *sql.DB, flavor replication.Flavor, parent *topodatapb.TabletAlias, src replication.SourceParams) error {
	srcDB, err := openSource(src)
	if err != nil {
		return nil
	}
	defer srcDB.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	primary, err := replication.ReadGTIDState(cctx, srcDB, flavor)
	if err != nil {
		m.log.Info("errant GTID check skipped: cannot read the source's transactions", zap.String("source", topoAlias(parent)), zap.Error(err))
		return nil
	}
	errant, err := replication.ErrantGTIDs(cctx, db, flavor, primary)
	if err != nil {
		return mysqlErr(err, "cannot compare this tablet's transactions with its new source's")
	}
	if errant.IsEmpty() {
		return nil
	}
	return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION,
		"Errant GTID detected - %s; this tablet holds transactions that %s never had: it must not replicate from it nor be promoted (remove them or rebuild this tablet)",
		errant, topoAlias(parent))
}

// openSource connects to a source MySQL as the replication user (it may read system variables).
func openSource(src replication.SourceParams) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = src.User, src.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(src.Host, strconv.Itoa(src.Port))
	cfg.Timeout, cfg.ReadTimeout = 3*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}

// waitJournal waits until the reparent journal row time_created_ns has been replicated here,
// until ctx ends (vtctld bounds it with --wait-replicas-timeout). 0 means no wait.
func (m *Manager) waitJournal(ctx context.Context, timeCreatedNS int64) error {
	if timeCreatedNS == 0 {
		return nil
	}
	db, _, err := m.server(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	q := fmt.Sprintf("SELECT action_name, primary_alias, replication_position FROM %s.reparent_journal WHERE time_created_ns=%d",
		quoteIdent(m.sidecarDB), timeCreatedNS)
	m.mu.Unlock()
	var lastErr error
	for {
		rows, err := db.QueryContext(ctx, q)
		if err == nil {
			found := rows.Next()
			_ = rows.Close()
			if found {
				return nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return mysqlErr(lastErr, fmt.Sprintf("reparent journal row %d never arrived", timeCreatedNS))
			}
			return rpcerr.Wrap(vtrpcpb.Code_DEADLINE_EXCEEDED, ctx.Err(),
				"reparent journal row %d never arrived (is replication from the new primary running?)", timeCreatedNS)
		case <-time.After(m.cfg.JournalPollInterval):
		}
	}
}
