package tabletmanager

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// servesQueries lists the types whose tablets run the query service (Vitess's IsRunningQueryService).
func servesQueries(t topodatapb.TabletType) bool {
	switch t {
	case topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY,
		topodatapb.TabletType_EXPERIMENTAL, topodatapb.TabletType_DRAINED:
		return true
	}
	return false
}

// Ping echoes payload.
func (m *Manager) Ping(payload string) string { return payload }

// Sleep holds the action lock for d (vtctldclient SleepTablet: tests of lock contention).
func (m *Manager) Sleep(ctx context.Context, d time.Duration) error {
	m.action.Lock()
	defer m.action.Unlock()
	select {
	case <-ctx.Done():
		return rpcerr.Wrap(rpcerr.Code(ctx.Err()), ctx.Err(), "Sleep interrupted")
	case <-time.After(d):
		return nil
	}
}

// ChangeTags sets tags on the tablet record (merged, or replacing all with replace) and
// returns the tags in force.
func (m *Manager) ChangeTags(ctx context.Context, tags map[string]string, replace bool) (map[string]string, error) {
	m.action.Lock()
	defer m.action.Unlock()
	m.mu.Lock()
	if replace || m.tablet.Tags == nil {
		m.tablet.Tags = map[string]string{}
	}
	for k, v := range tags {
		if v == "" {
			delete(m.tablet.Tags, k)
			continue
		}
		m.tablet.Tags[k] = v
	}
	out := maps.Clone(m.tablet.Tags)
	m.dirty = true
	m.mu.Unlock()
	if ts := m.connectedTopo(); ts != nil {
		if err := m.publishLocked(ctx, ts); err != nil {
			return nil, rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "tags changed locally; the topology record follows when etcd answers")
		}
	}
	return out, nil
}

// RunHealthCheck makes the query service probe MySQL and broadcast now.
func (m *Manager) RunHealthCheck() { m.qs.RunHealthCheck() }

// SetReadOnly sets MySQL read-only (or read-write when on is false) without changing the type.
func (m *Manager) SetReadOnly(ctx context.Context, on bool) error {
	m.action.Lock()
	defer m.action.Unlock()
	return m.mysql.SetReadOnly(ctx, on)
}

// ChangeType changes the tablet's type (vtctld's ChangeTabletType, TabletExternallyReparented).
// Becoming PRIMARY starts a new primary term: the topology record is written first (so two
// tablets are never both primary for Vitess while MySQL accepts writes on both), then MySQL
// is made read-write. Leaving PRIMARY winds the query service down and makes MySQL read-only
// before anything else. semiSync asks for the semi-sync settings of the new type.
func (m *Manager) ChangeType(ctx context.Context, tt topodatapb.TabletType, semiSync bool) error {
	switch tt {
	case topodatapb.TabletType_UNKNOWN, topodatapb.TabletType_BACKUP, topodatapb.TabletType_RESTORE:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "cannot change tablet type to %v", tt)
	}
	if _, ok := topodatapb.TabletType_name[int32(tt)]; !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "unknown tablet type %d", int32(tt))
	}
	m.action.Lock()
	defer m.action.Unlock()
	cur := m.Tablet().Type
	if tt == topodatapb.TabletType_DRAINED && cur == topodatapb.TabletType_DRAINED {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "Tablet: %s-%010d, is already drained", m.cfg.Alias.Cell, m.cfg.Alias.Uid)
	}
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return err
	}
	if err := m.changeTypeLocked(ctx, tt); err != nil {
		return err
	}
	return m.fixSemiSync(ctx, tt, action)
}

// changeTypeLocked is the one path a type change takes (RPCs, shard sync, reparents).
func (m *Manager) changeTypeLocked(ctx context.Context, tt topodatapb.TabletType) error {
	return m.changeType(ctx, tt, false)
}

// stepDownLocked leaves PRIMARY because the shard names a newer primary term: the old term
// is over whatever MySQL says, so the type changes even when MySQL cannot be made read-only
// now (mysqld down); read-only is then retried by every sync until it holds, and the tablet
// never serves as PRIMARY again meanwhile.
func (m *Manager) stepDownLocked(ctx context.Context) error {
	return m.changeType(ctx, topodatapb.TabletType_REPLICA, true)
}

func (m *Manager) changeType(ctx context.Context, tt topodatapb.TabletType, force bool) error {
	prev := m.Tablet()
	m.log.Info("changing tablet type", zap.Stringer("from", prev.Type), zap.Stringer("to", tt))
	if tt == topodatapb.TabletType_PRIMARY {
		return m.becomePrimaryLocked(ctx)
	}
	if prev.Type == topodatapb.TabletType_PRIMARY {
		// Stop the old term's writes in tabletd first (drain, roll back), then in MySQL.
		m.qs.Transition(ctx, tabletserver.Want{Type: prev.Type, PrimaryTermStart: timeFromProto(prev.PrimaryTermStartTime),
			Reason: "leaving PRIMARY for " + tt.String()})
		if err := m.mysql.SetReadOnly(ctx, true); err != nil && !force {
			m.applyServing(ctx) // still PRIMARY: serve again rather than stay half-changed
			return mysqlErr(err, "cannot make MySQL read-only before leaving PRIMARY")
		}
	}
	m.mu.Lock()
	m.tablet.Type, m.tablet.PrimaryTermStartTime = tt, nil
	m.demoted, m.dirty = false, true
	m.mu.Unlock()
	m.applyServing(ctx)
	if ts := m.connectedTopo(); ts != nil {
		_ = m.publishLocked(ctx, ts) // a failure stays dirty and is retried by sync
	}
	m.applyReadOnly(ctx)
	return nil
}

// becomePrimaryLocked starts a new primary term: record first, then MySQL read-write, the
// sidecar schema, then serving; the shard record follows (at once here, or by the sync loop).
func (m *Manager) becomePrimaryLocked(ctx context.Context) error {
	ts := m.connectedTopo()
	if ts == nil {
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "cannot become PRIMARY: the topology is not reachable yet")
	}
	m.mu.Lock()
	prevType, prevPTS := m.tablet.Type, m.tablet.PrimaryTermStartTime
	m.tablet.Type, m.tablet.PrimaryTermStartTime = topodatapb.TabletType_PRIMARY, timeToProto(m.now())
	m.mu.Unlock()
	if err := m.publishLocked(ctx, ts); err != nil {
		m.mu.Lock()
		m.tablet.Type, m.tablet.PrimaryTermStartTime, m.dirty = prevType, prevPTS, true
		m.mu.Unlock()
		return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot record the new primary term in the topology")
	}
	if err := m.mysql.SetReadOnly(ctx, false); err != nil {
		m.setROErr(err)
		return mysqlErr(err, "cannot make MySQL read-write")
	}
	m.setROErr(nil)
	m.mu.Lock()
	m.demoted = false
	m.mu.Unlock()
	m.ensureSidecar(ctx)
	m.applyServing(ctx)
	if err := m.syncShardLocked(ctx, ts); err != nil {
		m.log.Warn("shard record not updated yet; will retry", zap.Error(err))
	}
	return nil
}

// RefreshState re-reads what the topology says about this tablet's shard and applies it.
func (m *Manager) RefreshState(ctx context.Context) error {
	m.action.Lock()
	defer m.action.Unlock()
	ts := m.connectedTopo()
	if ts == nil {
		return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "the topology is not reachable yet")
	}
	if err := m.syncShardLocked(ctx, ts); err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot refresh state from the topology")
	}
	m.qs.RunHealthCheck()
	return nil
}

// refreshControlsLocked reads the SrvKeyspace of the cell: a partition of our type may
// disable the query service for our shard (set by workflows during cut-overs).
func (m *Manager) refreshControlsLocked(ctx context.Context, ts Topo, shard *topodatapb.Shard) error {
	t := m.Tablet()
	m.applyDeniedTablesLocked(shard, t.Type)
	sk, err := ts.GetSrvKeyspace(ctx, m.cfg.Keyspace)
	disabled := false
	switch {
	case ts.IsNoNode(err):
	case err != nil:
		return err
	default:
		for _, p := range sk.GetPartitions() {
			if p.ServedType != t.Type {
				continue
			}
			for _, c := range p.ShardTabletControls {
				if c.Name == m.cfg.Shard && c.QueryServiceDisabled {
					disabled = true
				}
			}
		}
	}
	m.mu.Lock()
	changed := m.qsDisabled != disabled
	m.qsDisabled = disabled
	m.mu.Unlock()
	if changed {
		m.applyServing(ctx)
	}
	return nil
}

// applyServing tells the query service the current type and whether to serve; it returns
// once the query service is in that state.
func (m *Manager) applyServing(ctx context.Context) {
	m.mu.Lock()
	t, disabled, demoted := m.tablet, m.qsDisabled, m.demoted
	w := tabletserver.Want{Type: t.Type, PrimaryTermStart: timeFromProto(t.PrimaryTermStartTime), Serving: true}
	m.mu.Unlock()
	switch {
	case !servesQueries(w.Type):
		w.Serving, w.Reason = false, fmt.Sprintf("tablet type %v does not serve queries", w.Type)
	case demoted:
		w.Serving, w.Reason = false, "demoted: MySQL is read-only, waiting to be re-pointed at the new primary"
	case disabled:
		w.Serving, w.Reason = false, "query service disabled by the keyspace's tablet controls"
	}
	m.qs.Transition(ctx, w)
	m.applyVReplication(w.Type, demoted)
}

// applyReadOnly makes MySQL read-only unless the tablet is PRIMARY. A failure (MySQL down)
// is remembered and retried by the next sync.
func (m *Manager) applyReadOnly(ctx context.Context) {
	t := m.Tablet()
	m.mu.Lock()
	demoted := m.demoted
	m.mu.Unlock()
	err := m.mysql.SetReadOnly(ctx, t.Type != topodatapb.TabletType_PRIMARY || demoted)
	m.setROErr(err)
	if err != nil {
		m.log.Warn("cannot set MySQL read-only state; will retry", zap.Error(err))
	}
}

func (m *Manager) setROErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.roErr = ""
		return
	}
	m.roErr = err.Error()
}

func (m *Manager) connectedTopo() Topo {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.registered {
		return nil
	}
	return m.ts
}

// applyDeniedTablesLocked applies Shard.tablet_controls: the denied tables for this
// tablet's type (in its cell, or in all cells when the control names none) become a
// FAIL_RETRY rule, as vttablet does during MoveTables cut-overs.
func (m *Manager) applyDeniedTablesLocked(shard *topodatapb.Shard, tt topodatapb.TabletType) {
	var denied []string
	for _, tc := range shard.GetTabletControls() {
		if tc.TabletType != tt {
			continue
		}
		if len(tc.Cells) == 0 || slices.Contains(tc.Cells, m.cfg.Alias.Cell) {
			denied = append(denied, tc.DeniedTables...)
		}
	}
	m.mu.Lock()
	changed := !slices.Equal(m.denied, denied)
	m.denied = denied
	m.mu.Unlock()
	if changed {
		m.log.Info("denied tables from the shard's tablet controls", zap.Strings("tables", denied))
		m.qs.SetDeniedTables(denied)
	}
}
