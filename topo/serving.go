package topo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
)

// servedTypes are the partitions RebuildKeyspaceGraph builds, in its order.
var servedTypes = [...]topodatapb.TabletType{
	topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY,
}

// GetSrvKeyspace reads the cell's keyspaces/<ks>/SrvKeyspace; ErrNoNode when absent.
func (s *Server) GetSrvKeyspace(ctx context.Context, keyspace string) (*topodatapb.SrvKeyspace, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	rec := &topodatapb.SrvKeyspace{}
	if _, err := s.cell.getProto(ctx, srvKeyspacePath(keyspace), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// GetSrvVSchema reads the cell's SrvVSchema; ErrNoNode when absent.
func (s *Server) GetSrvVSchema(ctx context.Context) (*vschemapb.SrvVSchema, error) {
	rec := &vschemapb.SrvVSchema{}
	if _, err := s.cell.getProto(ctx, srvVSchemaFile, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// EnsureServingGraph builds the cell's serving records for a keyspace the way
// the first v23 tablet of a keyspace in a cell does (tm_init.go):
//
//   - if keyspaces/<ks>/SrvKeyspace is missing, it is rebuilt as vtctld's
//     RebuildKeyspaceGraph would, under the keyspace lock: PRIMARY, REPLICA and
//     RDONLY partitions listing every is_primary_serving shard, sorted by key
//     range, which must cover the whole key range. If they do not (yet),
//     nothing is written and ErrIncompleteKeyspace is returned: call again
//     later, once the other shards exist;
//   - if SrvVSchema is missing or lacks the keyspace, it is rebuilt as
//     RebuildVSchemaGraph would, from every keyspace's VSchema and the global
//     routing, shard routing, keyspace routing and mirror rules.
//
// Existing records are never replaced by a rebuild that raced with another
// writer: SrvKeyspace is created only if absent, SrvVSchema is written with
// create-if-absent or compare-and-swap.
func (s *Server) EnsureServingGraph(ctx context.Context, keyspace string) error {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return err
	}
	ksErr := s.ensureSrvKeyspace(ctx, keyspace)
	if ksErr != nil && !errors.Is(ksErr, ErrIncompleteKeyspace) {
		return ksErr
	}
	if err := s.ensureSrvVSchema(ctx, keyspace); err != nil {
		return err
	}
	return ksErr
}

func (s *Server) ensureSrvKeyspace(ctx context.Context, keyspace string) error {
	_, err := s.GetSrvKeyspace(ctx, keyspace)
	if !errors.Is(err, ErrNoNode) {
		return err
	}
	return s.withKeyspaceLock(ctx, keyspace, "RebuildKeyspace", func(ctx context.Context) error {
		_, err := s.GetSrvKeyspace(ctx, keyspace)
		if !errors.Is(err, ErrNoNode) {
			return err // built by someone else while we waited, or a read error
		}
		ki, err := s.GetKeyspace(ctx, keyspace)
		if err != nil {
			return err
		}
		shards, err := s.listShards(ctx, keyspace)
		if err != nil {
			return err
		}
		sk, err := buildSrvKeyspace(s.cfg.Cell, keyspace, ki, shards)
		if err != nil {
			return err
		}
		_, err = s.cell.createProto(ctx, srvKeyspacePath(keyspace), sk)
		switch {
		case err == nil:
			s.log.Info("SrvKeyspace built", zap.String("keyspace", keyspace), zap.String("cell", s.cfg.Cell),
				zap.Int("serving_shards", len(sk.Partitions[0].ShardReferences)))
		case errors.Is(err, ErrNodeExists): // a vtctld wrote it without waiting for our lock
		default:
			return err
		}
		return nil
	})
}

// buildSrvKeyspace computes the SrvKeyspace of a keyspace for a cell from its
// shards, like topotools.RebuildKeyspaceLocked followed by
// topo.OrderAndCheckPartitions. It returns ErrIncompleteKeyspace when the
// serving shards do not cover the key range.
func buildSrvKeyspace(cell, keyspace string, ki *topodatapb.Keyspace, shards map[string]*topodatapb.Shard) (*topodatapb.SrvKeyspace, error) {
	names := make([]string, 0, len(shards))
	for name, sh := range shards {
		if sh.GetIsPrimaryServing() {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: keyspace %s has no shard with is_primary_serving yet", ErrIncompleteKeyspace, keyspace)
	}
	slices.Sort(names)
	refs := make([]*topodatapb.ShardReference, 0, len(names))
	for _, name := range names {
		refs = append(refs, &topodatapb.ShardReference{Name: name, KeyRange: shards[name].GetKeyRange()})
	}
	slices.SortStableFunc(refs, func(a, b *topodatapb.ShardReference) int {
		return compareKeyRanges(a.GetKeyRange(), b.GetKeyRange())
	})
	if err := checkCoverage(refs); err != nil {
		return nil, fmt.Errorf("%w: keyspace %s in cell %s: %v (start the missing shards' tablets; this is retried)",
			ErrIncompleteKeyspace, keyspace, cell, err)
	}
	sk := &topodatapb.SrvKeyspace{}
	if ki.GetThrottlerConfig() != nil {
		sk.ThrottlerConfig = proto.Clone(ki.GetThrottlerConfig()).(*topodatapb.ThrottlerConfig)
	}
	for _, tt := range servedTypes {
		p := &topodatapb.SrvKeyspace_KeyspacePartition{ServedType: tt}
		for _, r := range refs {
			p.ShardReferences = append(p.ShardReferences, proto.Clone(r).(*topodatapb.ShardReference))
		}
		sk.Partitions = append(sk.Partitions, p)
	}
	return sk, nil
}

// checkCoverage applies OrderAndCheckPartitions' rules to sorted references:
// the first starts at the minimum key, the last ends at the maximum key, and
// each ends where the next starts; shards without key ranges (custom sharding)
// must all be without.
func checkCoverage(refs []*topodatapb.ShardReference) error {
	first, last := refs[0], refs[len(refs)-1]
	if first.KeyRange != nil && len(first.KeyRange.Start) != 0 {
		return fmt.Errorf("first serving shard %q does not start at the minimum key", first.Name)
	}
	if last.KeyRange != nil && len(last.KeyRange.End) != 0 {
		return fmt.Errorf("last serving shard %q does not end at the maximum key", last.Name)
	}
	for i := 0; i+1 < len(refs); i++ {
		cur, next := refs[i], refs[i+1]
		if (cur.KeyRange != nil) != (next.KeyRange != nil) {
			return fmt.Errorf("shards %q and %q mix key-range and non-key-range names", cur.Name, next.Name)
		}
		if cur.KeyRange == nil {
			continue
		}
		if !keyRangesContiguous(cur.KeyRange, next.KeyRange) {
			return fmt.Errorf("gap or overlap between shard %q (end %s) and shard %q (start %s)",
				cur.Name, hex.EncodeToString(cur.KeyRange.End), next.Name, hex.EncodeToString(next.KeyRange.Start))
		}
	}
	return nil
}

// ensureSrvVSchema rebuilds the cell's SrvVSchema when it is missing or lacks
// the keyspace, retrying when another writer changes it meanwhile.
func (s *Server) ensureSrvVSchema(ctx context.Context, keyspace string) error {
	for {
		cur := &vschemapb.SrvVSchema{}
		rev, err := s.cell.getProto(ctx, srvVSchemaFile, cur)
		missing := errors.Is(err, ErrNoNode)
		if err != nil && !missing {
			return err
		}
		if !missing {
			if _, ok := cur.GetKeyspaces()[keyspace]; ok {
				return nil
			}
		}
		built, err := s.buildSrvVSchema(ctx)
		if err != nil {
			return err
		}
		if missing {
			_, err = s.cell.createProto(ctx, srvVSchemaFile, built)
		} else {
			_, err = s.cell.updateProto(ctx, srvVSchemaFile, built, rev)
		}
		switch {
		case errors.Is(err, ErrNodeExists), errors.Is(err, ErrBadVersion):
			continue // written concurrently: look again
		case err != nil:
			return err
		}
		s.log.Info("SrvVSchema rebuilt", zap.String("cell", s.cfg.Cell), zap.Int("keyspaces", len(built.Keyspaces)))
		return nil
	}
}

// buildSrvVSchema assembles the SrvVSchema from the global topology like
// topo.RebuildSrvVSchema: every keyspace's VSchema (an empty one when missing),
// routing rules, shard routing rules and mirror rules (empty when missing),
// and keyspace routing rules (absent when missing).
func (s *Server) buildSrvVSchema(ctx context.Context) (*vschemapb.SrvVSchema, error) {
	names, err := s.global.listDir(ctx, keyspacesDir)
	if err != nil && !errors.Is(err, ErrNoNode) {
		return nil, err
	}
	out := &vschemapb.SrvVSchema{Keyspaces: make(map[string]*vschemapb.Keyspace, len(names))}
	for _, ks := range names {
		vs := &vschemapb.Keyspace{}
		if _, err := s.global.getProto(ctx, vschemaPath(ks), vs); err != nil && !errors.Is(err, ErrNoNode) {
			return nil, err
		}
		out.Keyspaces[ks] = vs
	}
	out.RoutingRules = &vschemapb.RoutingRules{}
	if err := s.getOptional(ctx, routingRulesFile, out.RoutingRules); err != nil {
		return nil, err
	}
	out.ShardRoutingRules = &vschemapb.ShardRoutingRules{}
	if err := s.getOptional(ctx, shardRoutingRulesFile, out.ShardRoutingRules); err != nil {
		return nil, err
	}
	krr := &vschemapb.KeyspaceRoutingRules{}
	switch _, err := s.global.getProto(ctx, keyspaceRoutingRulesFile, krr); {
	case err == nil:
		out.KeyspaceRoutingRules = krr
	case !errors.Is(err, ErrNoNode):
		return nil, err
	}
	out.MirrorRules = &vschemapb.MirrorRules{}
	if err := s.getOptional(ctx, mirrorRulesFile, out.MirrorRules); err != nil {
		return nil, err
	}
	return out, nil
}

// getOptional decodes a global record into m, leaving m as is when absent.
func (s *Server) getOptional(ctx context.Context, rel string, m proto.Message) error {
	if _, err := s.global.getProto(ctx, rel, m); err != nil && !errors.Is(err, ErrNoNode) {
		return err
	}
	return nil
}
