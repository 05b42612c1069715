package tabletmanager

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
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

// RunHealthCheck makes the query service probe MySQL and broadcast now.
func (m *Manager) RunHealthCheck() { m.qs.RunHealthCheck() }

// SetReadOnly sets MySQL read-only (or read-write when on is false) without changing the type.
func (m *Manager) SetReadOnly(ctx context.Context, on bool) error {
	m.action.Lock()
	defer m.action.Unlock()
	return m.mysql.SetReadOnly(ctx, on)
}

// ChangeType changes the tablet's type. Becoming PRIMARY starts a new primary term: the
// topology record is written first (so two tablets are never both primary for Vitess while
// MySQL accepts writes on both), then MySQL is made read-write. Leaving PRIMARY makes MySQL
// read-only before anything else. semiSync is accepted for compatibility; tabletd does not
// manage semi-sync yet.
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
	if semiSync {
		m.log.Info("ChangeType asked for semi-sync; tabletd leaves semi-sync to the operator")
	}
	cur := m.Tablet().Type
	if tt == topodatapb.TabletType_DRAINED && cur == topodatapb.TabletType_DRAINED {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "Tablet: %s-%010d, is already drained", m.cfg.Alias.Cell, m.cfg.Alias.Uid)
	}
	return m.changeTypeLocked(ctx, tt)
}

func (m *Manager) changeTypeLocked(ctx context.Context, tt topodatapb.TabletType) error {
	prev := m.Tablet()
	m.log.Info("changing tablet type", zap.Stringer("from", prev.Type), zap.Stringer("to", tt))
	if tt == topodatapb.TabletType_PRIMARY {
		return m.becomePrimaryLocked(ctx)
	}
	if prev.Type == topodatapb.TabletType_PRIMARY {
		if err := m.mysql.SetReadOnly(ctx, true); err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot make MySQL read-only before leaving PRIMARY")
		}
	}
	m.mu.Lock()
	m.tablet.Type, m.tablet.PrimaryTermStartTime = tt, nil
	m.dirty = true
	m.mu.Unlock()
	m.applyServing()
	if ts := m.connectedTopo(); ts != nil {
		_ = m.publishLocked(ctx, ts) // a failure stays dirty and is retried by sync
	}
	m.applyReadOnly(ctx)
	return nil
}

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
		return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "cannot make MySQL read-write")
	}
	m.setROErr(nil)
	m.applyServing()
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
		m.applyServing()
	}
	return nil
}

// applyServing tells the query service the current type and whether to serve.
func (m *Manager) applyServing() {
	m.mu.Lock()
	t, disabled := m.tablet, m.qsDisabled
	tt, pts := t.Type, timeFromProto(t.PrimaryTermStartTime)
	m.mu.Unlock()
	switch {
	case !servesQueries(tt):
		m.qs.SetServingType(tt, pts, false, fmt.Sprintf("tablet type %v does not serve queries", tt))
	case disabled:
		m.qs.SetServingType(tt, pts, false, "query service disabled by the keyspace's tablet controls")
	default:
		m.qs.SetServingType(tt, pts, true, "")
	}
}

// applyReadOnly makes MySQL read-only unless the tablet is PRIMARY. A failure (MySQL down)
// is remembered and retried by the next sync.
func (m *Manager) applyReadOnly(ctx context.Context) {
	t := m.Tablet()
	err := m.mysql.SetReadOnly(ctx, t.Type != topodatapb.TabletType_PRIMARY)
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
