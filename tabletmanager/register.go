package tabletmanager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vttimepb"
)

// Topo is what the manager needs of the topology server (package topo implements it).
type Topo interface {
	GetOrCreateShard(ctx context.Context, keyspace, shard string) (*topodatapb.Shard, error)
	EnsureSidecarDBName(ctx context.Context, keyspace string) (string, error)
	GetTablet(ctx context.Context, alias *topodatapb.TabletAlias) (*topodatapb.Tablet, int64, error)
	RegisterTablet(ctx context.Context, t *topodatapb.Tablet) error
	UpdateTablet(ctx context.Context, alias *topodatapb.TabletAlias, update func(*topodatapb.Tablet) error) (*topodatapb.Tablet, error)
	GetShard(ctx context.Context, keyspace, shard string) (*topodatapb.Shard, error)
	UpdateShard(ctx context.Context, keyspace, shard string, update func(*topodatapb.Shard) error) (*topodatapb.Shard, error)
	GetSrvKeyspace(ctx context.Context, keyspace string) (*topodatapb.SrvKeyspace, error)
	GetKeyspace(ctx context.Context, keyspace string) (*topodatapb.Keyspace, error)
	EnsureServingGraph(ctx context.Context, keyspace string) error
	IsNoNode(err error) bool
	Close()
}

// run registers the tablet, then reconciles the topology every SyncInterval until ctx ends.
func (m *Manager) run(ctx context.Context) {
	defer close(m.done)
	if !m.retry(ctx, "register tablet", m.register) {
		return
	}
	graphDone := false
	tick := time.NewTicker(m.cfg.SyncInterval)
	defer tick.Stop()
	for {
		if !graphDone {
			graphDone = m.ensureServingGraph(ctx)
		}
		m.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.qs.TermChecks(): // a primary's MySQL came back: check the term now
		}
	}
}

// retry runs step until it succeeds (true), ctx ends (false) or it fails permanently (false,
// error sent on Fatal). Delays double from RetryInterval to MaxRetryInterval.
func (m *Manager) retry(ctx context.Context, what string, step func(context.Context) error) bool {
	delay := m.cfg.RetryInterval
	for {
		err := step(ctx)
		if err == nil {
			m.setTopoErr("")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if m.permanent(err) {
			m.log.Error("cannot "+what, zap.Error(err))
			select {
			case m.fatal <- err:
			default:
			}
			return false
		}
		m.setTopoErr(err.Error())
		m.log.Warn("cannot "+what+"; will retry", zap.Error(err), zap.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, m.cfg.MaxRetryInterval)
	}
}

func (m *Manager) setTopoErr(s string) {
	m.mu.Lock()
	m.topoErr = s
	m.mu.Unlock()
}

// topo returns the connected topology server, connecting first if needed.
func (m *Manager) topo(ctx context.Context) (Topo, error) {
	m.mu.Lock()
	ts := m.ts
	m.mu.Unlock()
	if ts != nil {
		return ts, nil
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.TopoTimeout)
	defer cancel()
	ts, err := m.openTopo(cctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.ts = ts
	m.mu.Unlock()
	return ts, nil
}

// register performs vttablet's startup sequence. Every check that can refuse the tablet runs
// before anything is written, so a refused tablet leaves the topology untouched.
func (m *Manager) register(ctx context.Context) error {
	ts, err := m.topo(ctx)
	if err != nil {
		return err
	}
	m.action.Lock()
	defer m.action.Unlock()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.TopoTimeout)
	defer cancel()

	old, _, err := ts.GetTablet(ctx, m.cfg.Alias)
	switch {
	case ts.IsNoNode(err):
		old = nil
	case err != nil:
		return err
	}
	if err := m.checkOwnership(ctx, old); err != nil {
		return err
	}
	shard, err := ts.GetOrCreateShard(ctx, m.cfg.Keyspace, m.cfg.Shard)
	if err != nil {
		return err
	}
	sidecarDB, err := ts.EnsureSidecarDBName(ctx, m.cfg.Keyspace)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.sidecarDB = sidecarDB
	m.mu.Unlock()
	if m.sidecarDBHook != nil {
		m.sidecarDBHook(sidecarDB)
	}
	m.adoptPrimaryship(shard, old)
	rec := m.Tablet()
	if err := m.releaseStale(ctx, ts, old); err != nil {
		return err
	}
	if err := ts.RegisterTablet(ctx, rec); err != nil {
		return err
	}
	m.mu.Lock()
	m.registered, m.dirty = true, false
	m.mu.Unlock()
	m.log.Info("tablet registered in topology", zap.Stringer("type", rec.Type))
	m.applyReadOnly(ctx)
	if rec.Type == topodatapb.TabletType_PRIMARY {
		m.ensureSidecar(ctx) // a primary from the start (or resuming its term) has it too
	}
	m.applyServing(ctx)
	return nil
}

// checkOwnership refuses to take over a record of another keyspace/shard or one that a live
// tablet elsewhere still advertises.
func (m *Manager) checkOwnership(ctx context.Context, old *topodatapb.Tablet) error {
	if old == nil {
		return nil
	}
	if old.Keyspace != m.cfg.Keyspace || old.Shard != m.cfg.Shard {
		return &HeldError{Alias: m.cfg.Alias, Detail: fmt.Sprintf("it belongs to keyspace/shard %s/%s, not %s/%s",
			old.Keyspace, old.Shard, m.cfg.Keyspace, m.cfg.Shard)}
	}
	if old.Hostname != "" && !sameHolder(old, m.cfg.Hostname, m.cfg.PortMap["grpc"]) {
		// A tablet killed with SIGKILL (or a pod rescheduled on another address) leaves its
		// addresses in the record: it holds the alias only while its gRPC port still answers.
		if holderAnswers(ctx, old) {
			return &HeldError{Alias: m.cfg.Alias, Detail: fmt.Sprintf("it is held by %s:%d", old.Hostname, old.PortMap["grpc"])}
		}
		m.log.Warn("taking over the tablet record of a tablet that no longer answers (killed, or moved)",
			zap.String("old_hostname", old.Hostname), zap.Int32("old_grpc_port", old.PortMap["grpc"]))
	}
	return nil
}

// releaseStale clears the addresses of a record whose holder no longer answers (checked by
// checkOwnership), as a clean shutdown would have, so that RegisterTablet takes it over; a
// record that changed holder meanwhile is left for RegisterTablet to refuse.
func (m *Manager) releaseStale(ctx context.Context, ts Topo, old *topodatapb.Tablet) error {
	if old == nil || old.Hostname == "" || sameHolder(old, m.cfg.Hostname, m.cfg.PortMap["grpc"]) {
		return nil
	}
	_, err := ts.UpdateTablet(ctx, m.cfg.Alias, func(t *topodatapb.Tablet) error {
		if sameHolder(t, old.Hostname, old.PortMap["grpc"]) {
			t.Hostname = ""
		}
		return nil
	})
	return err
}

// holderProbeTimeout bounds the check that a record's previous holder still listens.
const holderProbeTimeout = 2 * time.Second

// holderAnswers reports whether something accepts connections on the record's gRPC address.
// A refused or timed-out connection means the holder is gone; anything listening there is
// taken as the holder (refusing is the safe mistake: two tablets must never share an alias).
func holderAnswers(ctx context.Context, t *topodatapb.Tablet) bool {
	port := t.PortMap["grpc"]
	if port == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, holderProbeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.Hostname, strconv.Itoa(int(port))))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// HeldError says the alias is in use by another tablet; it is permanent.
type HeldError struct {
	Alias  *topodatapb.TabletAlias
	Detail string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("tablet %s-%010d cannot be registered: %s; stop that tablet or choose another --tablet-path",
		e.Alias.Cell, e.Alias.Uid, e.Detail)
}

// adoptPrimaryship decides, as vttablet does at start, whether this tablet resumes a primary
// term recorded in the shard or its own old record.
func (m *Manager) adoptPrimaryship(shard *topodatapb.Shard, old *topodatapb.Tablet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tablet
	shardSaysUs := shard.PrimaryAlias != nil && proto.Equal(shard.PrimaryAlias, m.cfg.Alias)
	switch {
	case shardSaysUs && old != nil && old.Type == topodatapb.TabletType_PRIMARY:
		t.Type, t.PrimaryTermStartTime = topodatapb.TabletType_PRIMARY, old.PrimaryTermStartTime
	case shardSaysUs && shard.PrimaryTermStartTime != nil:
		t.Type, t.PrimaryTermStartTime = topodatapb.TabletType_PRIMARY, shard.PrimaryTermStartTime
	case shardSaysUs:
		t.Type, t.PrimaryTermStartTime = topodatapb.TabletType_PRIMARY, timeToProto(m.now())
	case old != nil && old.Type == topodatapb.TabletType_PRIMARY &&
		timeFromProto(old.PrimaryTermStartTime).After(timeFromProto(shard.PrimaryTermStartTime)):
		t.Type, t.PrimaryTermStartTime = topodatapb.TabletType_PRIMARY, old.PrimaryTermStartTime
	default:
		// Keep the configured type; with --init-tablet-type PRIMARY that is a new term
		// starting now, newer than any recorded one, so the old primary steps down.
	}
}

func (m *Manager) ensureServingGraph(ctx context.Context) bool {
	ts, err := m.topo(ctx)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.TopoTimeout)
	defer cancel()
	if err := ts.EnsureServingGraph(cctx, m.cfg.Keyspace); err != nil {
		m.log.Info("serving graph not complete yet; will retry", zap.Error(err))
		return false
	}
	return true
}

// sync publishes a record that failed to publish earlier and reconciles the shard's primary.
func (m *Manager) sync(ctx context.Context) {
	ts, err := m.topo(ctx)
	if err != nil {
		return
	}
	m.action.Lock()
	defer m.action.Unlock()
	cctx, cancel := context.WithTimeout(ctx, m.cfg.TopoTimeout)
	defer cancel()
	m.mu.Lock()
	dirty := m.dirty
	m.mu.Unlock()
	if dirty {
		if err := m.publishLocked(cctx, ts); err != nil {
			return
		}
	}
	if err := m.syncShardLocked(cctx, ts); err != nil {
		m.setTopoErr(err.Error())
		m.log.Warn("shard sync failed; will retry", zap.Error(err))
		return
	}
	if m.Tablet().Type == topodatapb.TabletType_PRIMARY && m.qs.ConfirmTerm() {
		// The shard still names this term (a newer one stepped us down above) and mysqld came
		// back: make it writable again (it may have restarted read-only).
		m.applyReadOnly(cctx)
	}
	// A non-primary is kept read-only: a restarted mysqld comes back writable unless its
	// my.cnf says otherwise. A primary's read-write is never re-asserted periodically, only a
	// failed apply is retried: an external tool demoting this primary sets read_only before
	// telling Vitess, and re-enabling writes then would risk two writable primaries.
	m.mu.Lock()
	roFailed, demoted := m.roErr != "", m.demoted
	m.mu.Unlock()
	if roFailed || demoted || m.Tablet().Type != topodatapb.TabletType_PRIMARY {
		m.applyReadOnly(cctx)
	}
	m.applyDurabilityLocked(cctx, ts)
	m.repairReplicationLocked(cctx)
}

// publishLocked writes the wanted record; on failure it stays dirty for the next sync.
func (m *Manager) publishLocked(ctx context.Context, ts Topo) error {
	want := m.Tablet()
	_, err := ts.UpdateTablet(ctx, m.cfg.Alias, func(t *topodatapb.Tablet) error {
		if t.Hostname != "" && !sameHolder(t, m.cfg.Hostname, m.cfg.PortMap["grpc"]) {
			return errNotOurs
		}
		proto.Reset(t)
		proto.Merge(t, want)
		return nil
	})
	m.mu.Lock()
	m.dirty = err != nil
	m.mu.Unlock()
	if err != nil {
		m.setTopoErr(err.Error())
		m.log.Warn("cannot publish tablet record; will retry", zap.Error(err))
		return err
	}
	return nil
}

// syncShardLocked keeps Shard.primary_alias/primary_term_start_time equal to ours while we are
// primary, and steps down to REPLICA when the shard names a primary with a newer term.
func (m *Manager) syncShardLocked(ctx context.Context, ts Topo) error {
	t := m.Tablet()
	shard, err := ts.GetShard(ctx, m.cfg.Keyspace, m.cfg.Shard)
	if err != nil {
		return err
	}
	if t.Type != topodatapb.TabletType_PRIMARY {
		return m.refreshControlsLocked(ctx, ts, shard)
	}
	ours := timeFromProto(t.PrimaryTermStartTime)
	if shard.PrimaryAlias != nil && !proto.Equal(shard.PrimaryAlias, m.cfg.Alias) &&
		timeFromProto(shard.PrimaryTermStartTime).After(ours) {
		m.log.Warn("shard names a newer primary; stepping down to REPLICA",
			zap.String("new_primary", fmt.Sprintf("%s-%010d", shard.PrimaryAlias.Cell, shard.PrimaryAlias.Uid)))
		return m.stepDownLocked(ctx)
	}
	if proto.Equal(shard.PrimaryAlias, m.cfg.Alias) && timeFromProto(shard.PrimaryTermStartTime).Equal(ours) {
		return m.refreshControlsLocked(ctx, ts, shard)
	}
	shard, err = ts.UpdateShard(ctx, m.cfg.Keyspace, m.cfg.Shard, func(s *topodatapb.Shard) error {
		if s.PrimaryAlias != nil && !proto.Equal(s.PrimaryAlias, m.cfg.Alias) &&
			timeFromProto(s.PrimaryTermStartTime).After(ours) {
			return errors.New("a newer primary took the shard meanwhile")
		}
		s.PrimaryAlias = proto.Clone(m.cfg.Alias).(*topodatapb.TabletAlias)
		s.PrimaryTermStartTime = proto.Clone(t.PrimaryTermStartTime).(*vttimepb.Time)
		return nil
	})
	if err != nil {
		return err
	}
	m.log.Info("shard record now names this tablet primary")
	return m.refreshControlsLocked(ctx, ts, shard)
}
