package topo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
)

// GetOrCreateShard returns the shard record, creating what is missing the way
// a v23 vttablet does at startup (topo/shard.go GetOrCreateShard):
//
//  1. keyspaces/<ks>/Keyspace with sidecar_db_name "_vt", if absent;
//  2. keyspaces/<ks>/VSchema, an empty unsharded vschema, if absent;
//  3. under the keyspace lock, keyspaces/<ks>/shards/<shard>/Shard with the
//     shard's key_range and is_primary_serving = true unless an existing
//     shard's range overlaps it.
//
// Every write is create-if-absent, so tablets starting together converge on one
// set of records and never overwrite records written by vtctld. shard may be in
// any case; the canonical (lower-case) name is used.
func (s *Server) GetOrCreateShard(ctx context.Context, keyspace, shard string) (*topodatapb.Shard, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	shard, keyRange, err := ValidateShardName(shard)
	if err != nil {
		return nil, err
	}
	si, err := s.GetShard(ctx, keyspace, shard)
	if !errors.Is(err, ErrNoNode) {
		return si, err
	}
	if err := s.createKeyspaceIfAbsent(ctx, keyspace); err != nil {
		return nil, err
	}
	if err := s.createVSchemaIfAbsent(ctx, keyspace); err != nil {
		return nil, err
	}
	err = s.withKeyspaceLock(ctx, keyspace, "CreateShard", func(ctx context.Context) error {
		return s.createShardLocked(ctx, keyspace, shard, keyRange)
	})
	if err != nil {
		return nil, err
	}
	return s.GetShard(ctx, keyspace, shard)
}

func (s *Server) createKeyspaceIfAbsent(ctx context.Context, keyspace string) error {
	_, err := s.global.createProto(ctx, keyspacePath(keyspace), &topodatapb.Keyspace{SidecarDbName: defaultSidecarDBName})
	switch {
	case err == nil:
		s.log.Info("created keyspace record", zap.String("keyspace", keyspace), zap.String("sidecar_db_name", defaultSidecarDBName))
	case errors.Is(err, ErrNodeExists):
	default:
		return fmt.Errorf("creating keyspace %q: %w", keyspace, err)
	}
	return nil
}

// createVSchemaIfAbsent writes an empty unsharded vschema (which encodes to
// zero bytes, exactly what Vitess's EnsureVSchema writes) unless one exists.
func (s *Server) createVSchemaIfAbsent(ctx context.Context, keyspace string) error {
	_, err := s.global.createProto(ctx, vschemaPath(keyspace), &vschemapb.Keyspace{Sharded: false})
	switch {
	case err == nil:
		s.log.Info("created empty vschema", zap.String("keyspace", keyspace))
	case errors.Is(err, ErrNodeExists):
	default:
		return fmt.Errorf("creating vschema of keyspace %q: %w", keyspace, err)
	}
	return nil
}

// createShardLocked creates the Shard record; the keyspace lock must be held.
func (s *Server) createShardLocked(ctx context.Context, keyspace, shard string, keyRange *topodatapb.KeyRange) error {
	shards, err := s.listShards(ctx, keyspace)
	if err != nil {
		return err
	}
	if _, ok := shards[shard]; ok {
		return nil // created by someone else before we got the lock
	}
	rec := &topodatapb.Shard{KeyRange: keyRange, IsPrimaryServing: true}
	for _, other := range shards {
		if other.GetKeyRange() == nil || keyRangesIntersect(other.GetKeyRange(), keyRange) {
			rec.IsPrimaryServing = false
			break
		}
	}
	_, err = s.global.createProto(ctx, shardPath(keyspace, shard), rec)
	switch {
	case err == nil:
		s.log.Info("created shard record", zap.String("keyspace", keyspace), zap.String("shard", shard),
			zap.Bool("is_primary_serving", rec.IsPrimaryServing))
	case errors.Is(err, ErrNodeExists): // written by a vtctld that did not lock
	default:
		return fmt.Errorf("creating shard %s/%s: %w", keyspace, shard, err)
	}
	return nil
}

// listShards reads every Shard record of a keyspace, keyed by shard name.
// Keys that are not Shard records (locks, for instance) are skipped.
func (s *Server) listShards(ctx context.Context, keyspace string) (map[string]*topodatapb.Shard, error) {
	kvs, err := s.global.list(ctx, shardsDirPath(keyspace))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*topodatapb.Shard, len(kvs))
	prefix := s.global.dirPrefix(shardsDirPath(keyspace))
	for _, e := range kvs {
		name, file, ok := strings.Cut(strings.TrimPrefix(e.key, prefix), "/")
		if !ok || file != shardFile {
			continue // not <shard>/Shard: a lock key, for instance
		}
		rec := &topodatapb.Shard{}
		if err := unmarshal(e.value, rec); err != nil {
			return nil, fmt.Errorf("topo global: decoding %s: %w", e.key, err)
		}
		out[name] = rec
	}
	return out, nil
}

// GetShard reads keyspaces/<ks>/shards/<shard>/Shard; ErrNoNode when absent.
func (s *Server) GetShard(ctx context.Context, keyspace, shard string) (*topodatapb.Shard, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	shard, _, err := ValidateShardName(shard)
	if err != nil {
		return nil, err
	}
	rec := &topodatapb.Shard{}
	if _, err := s.global.getProto(ctx, shardPath(keyspace, shard), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// UpdateShard applies fn to the shard record and writes it back with
// compare-and-swap, retrying on concurrent changes. fn may return
// ErrNoUpdateNeeded to leave the record as it is. ErrNoNode when absent.
func (s *Server) UpdateShard(ctx context.Context, keyspace, shard string, fn func(*topodatapb.Shard) error) (*topodatapb.Shard, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	shard, _, err := ValidateShardName(shard)
	if err != nil {
		return nil, err
	}
	return modify(ctx, s.global, shardPath(keyspace, shard), false, func() *topodatapb.Shard { return &topodatapb.Shard{} }, fn)
}

// GetKeyspace reads keyspaces/<ks>/Keyspace; ErrNoNode when absent.
func (s *Server) GetKeyspace(ctx context.Context, keyspace string) (*topodatapb.Keyspace, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	rec := &topodatapb.Keyspace{}
	if _, err := s.global.getProto(ctx, keyspacePath(keyspace), rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// EnsureSidecarDBName makes sure the keyspace record names a sidecar database,
// setting "_vt" under the keyspace lock when it is empty (as vttablet does for
// a keyspace created by vtctld without one), and returns the name the tablet
// must use. The keyspace record must exist (GetOrCreateShard creates it).
func (s *Server) EnsureSidecarDBName(ctx context.Context, keyspace string) (string, error) {
	ks, err := s.GetKeyspace(ctx, keyspace)
	if err != nil {
		return "", err
	}
	if ks.GetSidecarDbName() != "" {
		return ks.GetSidecarDbName(), nil
	}
	var name string
	err = s.withKeyspaceLock(ctx, keyspace, "Setting sidecar database name", func(ctx context.Context) error {
		rec, err := modify(ctx, s.global, keyspacePath(keyspace), false, func() *topodatapb.Keyspace { return &topodatapb.Keyspace{} },
			func(k *topodatapb.Keyspace) error {
				if k.SidecarDbName != "" {
					return ErrNoUpdateNeeded
				}
				k.SidecarDbName = defaultSidecarDBName
				return nil
			})
		if err == nil {
			name = rec.GetSidecarDbName()
		}
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.Info("keyspace sidecar database name set", zap.String("keyspace", keyspace), zap.String("sidecar_db_name", name))
	return name, nil
}
