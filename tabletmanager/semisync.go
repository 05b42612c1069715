package tabletmanager

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/replication"
)

// semiSyncAction is what an RPC's semiSync flag asks for, as vttablet reads it: true sets
// the semi-sync settings of the tablet's type; false clears them where semi-sync exists at
// all, and does nothing on a server without it.
type semiSyncAction int

const (
	semiSyncNone semiSyncAction = iota
	semiSyncSet
	semiSyncUnset
)

// Durability policies of the Keyspace record, as vtctld names them.
const (
	durabilityNone      = "none"
	durabilitySemiSync  = "semi_sync"
	durabilityCrossCell = "cross_cell"
)

var durabilityPolicies = []string{"", durabilityNone, durabilitySemiSync, durabilityCrossCell}

func (m *Manager) semiSyncAction(ctx context.Context, semiSync bool) (semiSyncAction, error) {
	if semiSync {
		return semiSyncSet, nil
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return semiSyncNone, err
	}
	ss, err := replication.ReadSemiSync(ctx, db, flavor)
	if err != nil {
		return semiSyncNone, mysqlErr(err, "cannot read the semi-sync settings")
	}
	if !ss.Available {
		return semiSyncNone, nil
	}
	return semiSyncUnset, nil
}

// semiSyncSides are the semi-sync sides a tablet of type tt has when semi-sync is on: the
// primary waits for acks and is itself eligible; a REPLICA acks; other types never ack (they
// are not promotable, and an ack from them would not protect a write).
func semiSyncSides(tt topodatapb.TabletType) (primary, replica bool) {
	return tt == topodatapb.TabletType_PRIMARY, tt == topodatapb.TabletType_PRIMARY || tt == topodatapb.TabletType_REPLICA
}

// fixSemiSync applies action for a tablet of type tt.
func (m *Manager) fixSemiSync(ctx context.Context, tt topodatapb.TabletType, action semiSyncAction) error {
	var primary, replica bool
	switch action {
	case semiSyncNone:
		return nil
	case semiSyncSet:
		primary, replica = semiSyncSides(tt)
	}
	return m.setSemiSync(ctx, primary, replica)
}

func (m *Manager) setSemiSync(ctx context.Context, primary, replica bool) error {
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if err := replication.SetSemiSync(ctx, db, flavor, primary, replica); err != nil {
		return mysqlErr(err, fmt.Sprintf("cannot set semi-sync (primary side %v, replica side %v)", primary, replica))
	}
	return nil
}

// applyDurabilityLocked makes semi-sync follow the keyspace's durability policy without a
// reparent (vttablet only applies it at the next one): SetKeyspaceDurabilityPolicy semi_sync
// then protects acknowledged writes from the next failover on. Under cross_cell only replicas
// in another cell than the primary ack. A failure is logged and retried at the next sync.
func (m *Manager) applyDurabilityLocked(ctx context.Context, ts Topo) {
	ks, err := ts.GetKeyspace(ctx, m.cfg.Keyspace)
	if err != nil {
		return
	}
	policy := ks.GetDurabilityPolicy()
	if !slices.Contains(durabilityPolicies, policy) {
		m.setReplErr(fmt.Sprintf("keyspace durability policy %q is not one of none, semi_sync, cross_cell: semi-sync left as it is", policy))
		return
	}
	t := m.Tablet()
	primary, replica := false, false
	switch policy {
	case durabilitySemiSync:
		primary, replica = semiSyncSides(t.Type)
	case durabilityCrossCell:
		primary, replica = semiSyncSides(t.Type)
		if t.Type != topodatapb.TabletType_PRIMARY {
			shard, err := ts.GetShard(ctx, m.cfg.Keyspace, m.cfg.Shard)
			if err != nil {
				return
			}
			pa := shard.GetPrimaryAlias()
			replica = replica && pa != nil && pa.Cell != m.cfg.Alias.Cell && !proto.Equal(pa, m.cfg.Alias)
		}
	}
	m.mu.Lock()
	changed := m.durability != policy
	m.durability = policy
	demoted := m.demoted
	m.mu.Unlock()
	if demoted {
		return // a demoted primary's semi-sync belongs to the reparent in progress
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return
	}
	ss, err := replication.ReadSemiSync(ctx, db, flavor)
	if err != nil || (!ss.Available && !primary && !replica) {
		return
	}
	if ss.PrimaryEnabled == primary && ss.ReplicaEnabled == replica {
		return
	}
	if err := m.setSemiSync(ctx, primary, replica); err != nil {
		m.log.Warn("cannot apply the keyspace durability policy", zap.String("policy", policy), zap.Error(err))
		return
	}
	m.log.Info("semi-sync follows the keyspace durability policy", zap.String("policy", policy),
		zap.Bool("policy_changed", changed), zap.Bool("primary_side", primary), zap.Bool("replica_side", replica))
}
