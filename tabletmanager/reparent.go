package tabletmanager

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/replicationdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// The reparent RPCs vtctld sends (InitShardPrimary, PlannedReparentShard,
// EmergencyReparentShard): vtctld-flows-v23.md §2 lists them in order. Each takes the action
// lock, and each leaves the tablet either in the state asked for or in the state it started
// in — never with a type, read-only setting and replication that disagree.

// ResetReplication forgets all replication state: no source, empty binary logs and GTID
// position (InitShardPrimary's first step, on every tablet).
func (m *Manager) ResetReplication(ctx context.Context) error {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if err := replication.ResetReplication(ctx, db, flavor); err != nil {
		return mysqlErr(err, "ResetReplication")
	}
	m.setReplStopped(true)
	return nil
}

// ResetReplicationParameters removes the replication source but keeps the binary logs.
func (m *Manager) ResetReplicationParameters(ctx context.Context) error {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return err
	}
	if err := replication.ResetReplicationParameters(ctx, db, flavor); err != nil {
		return mysqlErr(err, "ResetReplicationParameters")
	}
	m.setReplStopped(true)
	return nil
}

// InitPrimary makes this tablet the primary of a new shard: MySQL read-write, the position
// read, then the type PRIMARY with a new term — which creates the sidecar schema AFTER the
// position, with binary logging, so every replica started at that position receives it by
// replication, a Vitess vttablet replica included (it creates no sidecar of its own). The
// sidecar DDL carries IF NOT EXISTS, so a replica that has the sidecar already applies it as
// a no-op.
func (m *Manager) InitPrimary(ctx context.Context, semiSync bool) (string, error) {
	m.action.Lock()
	defer m.action.Unlock()
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return "", err
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return "", err
	}
	if err := m.mysql.SetReadOnly(ctx, false); err != nil {
		return "", mysqlErr(err, "cannot make MySQL read-write")
	}
	pos, err := replication.PrimaryPosition(ctx, db, flavor)
	if err != nil {
		_ = m.mysql.SetReadOnly(ctx, m.Tablet().Type != topodatapb.TabletType_PRIMARY)
		return "", mysqlErr(err, "cannot read the primary position")
	}
	if err := m.changeTypeLocked(ctx, topodatapb.TabletType_PRIMARY); err != nil {
		return "", err
	}
	// Semi-sync last: a primary waiting for acks before its replicas exist would hang.
	if err := m.fixSemiSync(ctx, topodatapb.TabletType_PRIMARY, action); err != nil {
		return "", err
	}
	return pos.String(), nil
}

// InitReplica points a tablet of a new shard at its primary at the primary's starting
// position, and waits for the reparent journal row time_created_ns to arrive by replication.
func (m *Manager) InitReplica(ctx context.Context, parent *topodatapb.TabletAlias, position string, timeCreatedNS int64, semiSync bool) error {
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
	pos, err := parsePosition(position, flavor)
	if err != nil {
		return err
	}
	src, err := m.sourceOf(ctx, parent)
	if err != nil {
		return err
	}
	if m.Tablet().Type == topodatapb.TabletType_PRIMARY {
		if err := m.changeTypeLocked(ctx, topodatapb.TabletType_REPLICA); err != nil {
			return err
		}
	}
	if err := m.fixSemiSync(ctx, topodatapb.TabletType_REPLICA, action); err != nil {
		return err
	}
	if err := m.replicateFromLocked(ctx, db, flavor, parent, src, &pos); err != nil {
		return err
	}
	m.qs.RunHealthCheck()
	return m.waitJournal(ctx, timeCreatedNS)
}

// DemotePrimary stops this primary's writes for good: the query service is wound down (new
// writes refused with NOT_SERVING so vtgate buffers, open transactions get the grace period,
// then are rolled back), no write is left waiting for a semi-sync ack, MySQL is read-only,
// primary-side semi-sync is off; it returns the final position. On a tablet that is not
// primary it only makes sure MySQL is read-only (idempotent). A step that fails undoes the
// earlier ones.
func (m *Manager) DemotePrimary(ctx context.Context) (*replicationdatapb.PrimaryStatus, error) {
	m.action.Lock()
	defer m.action.Unlock()
	db, flavor, err := m.server(ctx)
	if err != nil {
		return nil, err
	}
	t := m.Tablet()
	wasPrimary := t.Type == topodatapb.TabletType_PRIMARY
	wasReadOnly, err := replication.ReadOnly(ctx, db)
	if err != nil {
		return nil, mysqlErr(err, "cannot read read_only")
	}
	m.mu.Lock()
	wasDemoted := m.demoted
	m.mu.Unlock()
	undo := func() {}
	if wasPrimary && !wasDemoted {
		m.mu.Lock()
		m.demoted = true
		m.mu.Unlock()
		m.applyServing(ctx) // returns once the term's writes are over
		undo = func() {
			m.mu.Lock()
			m.demoted = false
			m.mu.Unlock()
			if !wasReadOnly {
				_ = m.mysql.SetReadOnly(context.Background(), false)
			}
			m.applyServing(context.Background())
		}
	}
	if err := m.waitSemiSyncUnblocked(ctx, db, flavor); err != nil {
		undo()
		return nil, err
	}
	if err := m.mysql.SetReadOnly(ctx, true); err != nil {
		undo()
		return nil, mysqlErr(err, "cannot make MySQL read-only")
	}
	if ss, err := replication.ReadSemiSync(ctx, db, flavor); err == nil && ss.PrimaryEnabled {
		if err := replication.SetSemiSync(ctx, db, flavor, false, ss.ReplicaEnabled); err != nil {
			undo()
			return nil, mysqlErr(err, "cannot turn primary-side semi-sync off")
		}
	}
	st, err := replication.ReadPrimaryStatus(ctx, db, flavor)
	if err != nil {
		undo()
		return nil, mysqlErr(err, "cannot read the primary status")
	}
	m.log.Info("demoted", zap.Bool("was_primary", wasPrimary), zap.String("position", st.Position.String()))
	return primaryStatusProto(st), nil
}

// waitSemiSyncUnblocked waits until no commit waits for a semi-sync ack (such a write is
// acknowledged to no one yet but may still be in the binlog the new primary catches up with).
func (m *Manager) waitSemiSyncUnblocked(ctx context.Context, db replication.Querier, flavor replication.Flavor) error {
	for {
		ss, err := replication.ReadSemiSync(ctx, db, flavor)
		if err != nil {
			return mysqlErr(err, "cannot read the semi-sync status")
		}
		if !ss.PrimaryEnabled || ss.WaitingSessions == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return rpcerr.Wrap(vtrpcpb.Code_DEADLINE_EXCEEDED, ctx.Err(),
				"%d write(s) still wait for a semi-sync acknowledgement", ss.WaitingSessions)
		case <-time.After(m.cfg.JournalPollInterval):
		}
	}
}

// UndoDemotePrimary reverts DemotePrimary after a failed PlannedReparentShard: semi-sync as
// asked, MySQL read-write, serving again in the same primary term.
func (m *Manager) UndoDemotePrimary(ctx context.Context, semiSync bool) error {
	m.action.Lock()
	defer m.action.Unlock()
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return err
	}
	if m.Tablet().Type != topodatapb.TabletType_PRIMARY {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "UndoDemotePrimary: tablet %s is %v, not PRIMARY",
			topoAlias(m.cfg.Alias), m.Tablet().Type)
	}
	if err := m.fixSemiSync(ctx, topodatapb.TabletType_PRIMARY, action); err != nil {
		return err
	}
	if err := m.mysql.SetReadOnly(ctx, false); err != nil {
		return mysqlErr(err, "cannot make MySQL read-write")
	}
	m.mu.Lock()
	m.demoted = false
	m.mu.Unlock()
	m.applyServing(ctx)
	return nil
}

// PromoteReplica makes this replica the primary: replication stopped and forgotten, its
// position read, semi-sync for a primary, then type PRIMARY (new term, read-write, serving).
func (m *Manager) PromoteReplica(ctx context.Context, semiSync bool) (string, error) {
	m.action.Lock()
	defer m.action.Unlock()
	action, err := m.semiSyncAction(ctx, semiSync)
	if err != nil {
		return "", err
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return "", err
	}
	if err := replication.StopReplication(ctx, db, flavor); err != nil {
		return "", mysqlErr(err, "cannot stop replication")
	}
	m.setReplStopped(true)
	if err := replication.ResetReplicationParameters(ctx, db, flavor); err != nil {
		return "", mysqlErr(err, "cannot reset replication")
	}
	pos, err := replication.PrimaryPosition(ctx, db, flavor)
	if err != nil {
		return "", mysqlErr(err, "cannot read the position")
	}
	if err := m.fixSemiSync(ctx, topodatapb.TabletType_PRIMARY, action); err != nil {
		return "", err
	}
	if err := m.changeTypeLocked(ctx, topodatapb.TabletType_PRIMARY); err != nil {
		return "", err
	}
	m.log.Info("promoted to PRIMARY", zap.String("position", pos.String()))
	return pos.String(), nil
}

// ReplicaWasPromoted records that this tablet became primary outside Vitess.
func (m *Manager) ReplicaWasPromoted(ctx context.Context) error {
	m.action.Lock()
	defer m.action.Unlock()
	return m.changeTypeLocked(ctx, topodatapb.TabletType_PRIMARY)
}

// ReplicaWasRestarted records that this tablet's replication was re-pointed outside Vitess:
// a PRIMARY becomes REPLICA, any other type stays.
func (m *Manager) ReplicaWasRestarted(ctx context.Context, _ *topodatapb.TabletAlias) error {
	m.action.Lock()
	defer m.action.Unlock()
	if m.Tablet().Type != topodatapb.TabletType_PRIMARY {
		return nil
	}
	return m.changeTypeLocked(ctx, topodatapb.TabletType_REPLICA)
}

// replicateFromLocked makes this server a replica of parent (its MySQL is src) from pos, or
// from where the server stands when pos is nil (an empty server: from the primary's first
// event), and starts replication. The sidecar tables are created first, locally, without
// binary logging, because the parent's binary log may not create them: a vttablet primary
// creates them before the position it hands out, and a primary that was a replica when they
// were made has them only unlogged. The primary's later sidecar DDL is then a no-op and its
// journal rows apply. Called with m.action held.
func (m *Manager) replicateFromLocked(ctx context.Context, db *sql.DB, flavor replication.Flavor,
	parent *topodatapb.TabletAlias, src replication.SourceParams, pos *replication.Position) error {
	if err := m.ensureSidecarErr(ctx, true); err != nil {
		return err
	}
	if pos != nil {
		if err := replication.SetReplicationPosition(ctx, db, flavor, *pos); err != nil {
			return mysqlErr(err, "cannot set the replication position")
		}
	}
	if err := replication.SetSource(ctx, db, flavor, src, true); err != nil {
		return mysqlErr(err, "cannot point replication at "+topoAlias(parent))
	}
	m.setReplStopped(false)
	return nil
}

// ensureSidecar creates the sidecar schema on a new primary; a failure is logged and shown,
// the tablet serves anyway (only the features that need it fail).
func (m *Manager) ensureSidecar(ctx context.Context) {
	if err := m.ensureSidecarErr(ctx, false); err != nil {
		m.log.Warn("sidecar schema not created", zap.Error(err))
	}
}

func (m *Manager) ensureSidecarErr(ctx context.Context, local bool) error {
	if m.ensureSidecarHook == nil {
		return nil
	}
	m.mu.Lock()
	name := m.sidecarDB
	m.mu.Unlock()
	if err := m.ensureSidecarHook(ctx, name, local); err != nil {
		m.setReplErr("sidecar schema: " + err.Error())
		return mysqlErr(err, fmt.Sprintf("cannot create the sidecar schema %s", name))
	}
	return nil
}
