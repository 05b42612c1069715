package topo

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// checkAlias rejects a nil alias or one outside this Server's cell.
func (s *Server) checkAlias(a *topodatapb.TabletAlias) error {
	if a == nil {
		return fmt.Errorf("%w: nil tablet alias", ErrInvalidAlias)
	}
	if err := ValidateCellName(a.GetCell()); err != nil {
		return fmt.Errorf("%w %s: %v", ErrInvalidAlias, AliasString(a), err)
	}
	if a.GetCell() != s.cfg.Cell {
		return fmt.Errorf("%w: %s is in cell %q but this server is connected to cell %q only",
			ErrWrongCell, AliasString(a), a.GetCell(), s.cfg.Cell)
	}
	return nil
}

// GetTablet reads tablets/<alias>/Tablet from the cell and returns it with its
// ModRevision; ErrNoNode when absent.
func (s *Server) GetTablet(ctx context.Context, alias *topodatapb.TabletAlias) (*topodatapb.Tablet, int64, error) {
	if err := s.checkAlias(alias); err != nil {
		return nil, 0, err
	}
	rec := &topodatapb.Tablet{}
	rev, err := s.cell.getProto(ctx, tabletPath(alias), rec)
	if err != nil {
		return nil, 0, err
	}
	return rec, rev, nil
}

// RegisterTablet writes the tablet's record and its ShardReplication entry, as
// vttablet does at startup (tm_init.go initTablet). The record is stored with
// the canonical shard name and the key range parsed from it.
//
// If a record for the alias exists, it is overwritten only when it has the same
// keyspace and shard (else ErrTabletMismatch) and it is not held by another
// live tablet: its hostname is empty (cleanly shut down), or hostname and
// port_map["grpc"] equal this tablet's (a restart); else ErrTabletHeld and the
// record is left unchanged. The overwrite is a compare-and-swap on the record
// that was checked.
func (s *Server) RegisterTablet(ctx context.Context, t *topodatapb.Tablet) error {
	rec, err := s.prepareTablet(t)
	if err != nil {
		return err
	}
	p := tabletPath(rec.Alias)
	for {
		_, err := s.cell.createProto(ctx, p, rec)
		if err == nil {
			if err := s.addShardReplication(ctx, rec); err != nil {
				return err
			}
			s.log.Info("tablet record created", zap.String("alias", AliasString(rec.Alias)),
				zap.String("keyspace", rec.Keyspace), zap.String("shard", rec.Shard))
			return nil
		}
		if !errors.Is(err, ErrNodeExists) {
			return err
		}
		old, rev, err := s.GetTablet(ctx, rec.Alias)
		if errors.Is(err, ErrNoNode) {
			continue // deleted in between: create again
		}
		if err != nil {
			return err
		}
		if err := checkTakeover(old, rec); err != nil {
			return err
		}
		// Fix a missing ShardReplication entry (e.g. a previous start that
		// timed out between the two writes) before overwriting, like Vitess.
		if err := s.addShardReplication(ctx, rec); err != nil {
			return err
		}
		_, err = s.cell.updateProto(ctx, p, rec, rev)
		if errors.Is(err, ErrBadVersion) {
			continue // changed since we checked it: check again
		}
		if err != nil {
			return err
		}
		s.log.Info("tablet record overwritten", zap.String("alias", AliasString(rec.Alias)),
			zap.String("previous_hostname", old.GetHostname()))
		return nil
	}
}

// prepareTablet validates a tablet and returns a copy with the canonical
// shard name and key range.
func (s *Server) prepareTablet(t *topodatapb.Tablet) (*topodatapb.Tablet, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil tablet", ErrInvalidTablet)
	}
	if err := s.checkAlias(t.GetAlias()); err != nil {
		return nil, err
	}
	if err := ValidateKeyspaceName(t.GetKeyspace()); err != nil {
		return nil, fmt.Errorf("tablet %s: %w (set --init-keyspace)", AliasString(t.Alias), err)
	}
	shard, kr, err := ValidateShardName(t.GetShard())
	if err != nil {
		return nil, fmt.Errorf("tablet %s: %w (set --init-shard)", AliasString(t.Alias), err)
	}
	if t.GetHostname() == "" {
		return nil, fmt.Errorf("%w: tablet %s has an empty hostname; set --tablet-hostname", ErrInvalidTablet, AliasString(t.Alias))
	}
	rec := proto.Clone(t).(*topodatapb.Tablet)
	rec.Shard, rec.KeyRange = shard, kr
	return rec, nil
}

// checkTakeover decides whether rec may overwrite the existing record old.
func checkTakeover(old, rec *topodatapb.Tablet) error {
	alias := AliasString(rec.Alias)
	if old.GetKeyspace() != rec.Keyspace || old.GetShard() != rec.Shard {
		return fmt.Errorf("%w: tablet %s is registered for %s/%s but this tablet is configured for %s/%s; "+
			"start it with --init-keyspace=%s --init-shard=%s, choose another uid in --tablet-path, "+
			"or remove the old record with: vtctldclient DeleteTablets %s",
			ErrTabletMismatch, alias, old.GetKeyspace(), old.GetShard(), rec.Keyspace, rec.Shard,
			old.GetKeyspace(), old.GetShard(), alias)
	}
	if old.GetHostname() == "" {
		return nil // the previous owner shut down cleanly
	}
	oldGRPC, newGRPC := old.GetPortMap()["grpc"], rec.GetPortMap()["grpc"]
	if old.GetHostname() == rec.GetHostname() && oldGRPC == newGRPC {
		return nil // same host:port: this tablet restarting
	}
	return fmt.Errorf("%w: tablet %s is registered by %s:%d (grpc), this tablet is %s:%d; "+
		"if that tablet is still running give this one another uid in --tablet-path, "+
		"otherwise free the alias with: vtctldclient DeleteTablets %s (a tablet shut down cleanly frees it itself)",
		ErrTabletHeld, alias, old.GetHostname(), oldGRPC, rec.GetHostname(), newGRPC, alias)
}

// UpdateTablet applies fn to the tablet record and writes it back with
// compare-and-swap, retrying on concurrent changes; it returns the record as
// written. fn may return ErrNoUpdateNeeded to leave the record unchanged.
// ErrNoNode when absent.
func (s *Server) UpdateTablet(ctx context.Context, alias *topodatapb.TabletAlias, fn func(*topodatapb.Tablet) error) (*topodatapb.Tablet, error) {
	if err := s.checkAlias(alias); err != nil {
		return nil, err
	}
	return modify(ctx, s.cell, tabletPath(alias), false, func() *topodatapb.Tablet { return &topodatapb.Tablet{} }, fn)
}

// GetShardReplication reads the cell's keyspaces/<ks>/shards/<shard>/ShardReplication.
func (s *Server) GetShardReplication(ctx context.Context, keyspace, shard string) (*topodatapb.ShardReplication, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	shard, _, err := ValidateShardName(shard)
	if err != nil {
		return nil, err
	}
	rec := &topodatapb.ShardReplication{}
	if _, err := s.cell.getProto(ctx, shardReplicationPath(keyspace, shard), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// addShardReplication makes sure the tablet appears exactly once in its
// shard's ShardReplication record in the cell (topo/replication.go
// UpdateShardReplicationRecord), creating the record if needed.
func (s *Server) addShardReplication(ctx context.Context, t *topodatapb.Tablet) error {
	alias := t.GetAlias()
	_, err := modify(ctx, s.cell, shardReplicationPath(t.Keyspace, t.Shard), true,
		func() *topodatapb.ShardReplication { return &topodatapb.ShardReplication{} },
		func(sr *topodatapb.ShardReplication) error {
			nodes := make([]*topodatapb.ShardReplication_Node, 0, len(sr.Nodes)+1)
			found, modified := false, false
			for _, n := range sr.Nodes {
				if sameAlias(n.GetTabletAlias(), alias) {
					if found {
						modified = true // drop a duplicate
						continue
					}
					found = true
				}
				nodes = append(nodes, n)
			}
			if !found {
				nodes = append(nodes, &topodatapb.ShardReplication_Node{TabletAlias: proto.Clone(alias).(*topodatapb.TabletAlias)})
				modified = true
			}
			if !modified {
				return ErrNoUpdateNeeded
			}
			sr.Nodes = nodes
			return nil
		})
	if err != nil {
		return fmt.Errorf("adding %s to ShardReplication of %s/%s: %w", AliasString(alias), t.Keyspace, t.Shard, err)
	}
	return nil
}

func sameAlias(a, b *topodatapb.TabletAlias) bool {
	return a.GetCell() == b.GetCell() && a.GetUid() == b.GetUid()
}
