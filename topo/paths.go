package topo

// The layout. Every record is stored exactly as Vitess v23's etcd2 plugin stores it, so an
// unmodified vtctld or vtgate reads what tabletd writes and vice versa:
//
//   - key   = path.Join(<root>, <relative path>), where <root> is --topo-global-root
//     for the global topology and CellInfo.root for a cell;
//   - value = the binary protobuf encoding of the record;
//   - version = the key's etcd ModRevision. Updates are compare-and-swap on it,
//     creations are transactions guarded by CreateRevision(key) == 0.
//
// Relative paths used:
//
//	global: keyspaces/<ks>/Keyspace, keyspaces/<ks>/VSchema,
//	        keyspaces/<ks>/shards/<shard>/Shard, keyspaces/<ks>/locks/<leaseID>,
//	        RoutingRules, ShardRoutingRules, MirrorRules, routing_rules/keyspace/Rules,
//	        cells/<cell>/CellInfo
//	cell:   tablets/<cell>-<uid %010d>/Tablet,
//	        keyspaces/<ks>/shards/<shard>/ShardReplication,
//	        keyspaces/<ks>/SrvKeyspace, SrvVSchema
//
// Keyspace and shard locks are interoperable with vtctld's: an ephemeral key
// <dir>/locks/<leaseID> bound to an etcd lease, held once no older key exists in
// that locks directory (see lock.go).

import (
	"path"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// File and directory names of Vitess v23's topology layout (go/vt/topo/server.go).
const (
	cellsDir        = "cells"
	keyspacesDir    = "keyspaces"
	shardsDir       = "shards"
	tabletsDir      = "tablets"
	locksDir        = "locks" // etcd2topo/config.go locksPath
	routingRulesDir = "routing_rules"

	cellInfoFile             = "CellInfo"
	keyspaceFile             = "Keyspace"
	shardFile                = "Shard"
	vschemaFile              = "VSchema"
	shardReplicationFile     = "ShardReplication"
	tabletFile               = "Tablet"
	srvVSchemaFile           = "SrvVSchema"
	srvKeyspaceFile          = "SrvKeyspace"
	routingRulesFile         = "RoutingRules"
	shardRoutingRulesFile    = "ShardRoutingRules"
	mirrorRulesFile          = "MirrorRules"
	keyspaceRoutingRulesFile = "routing_rules/keyspace/Rules"

	// defaultSidecarDBName is what the first tablet of a keyspace records in
	// Keyspace.sidecar_db_name (go/constants/sidecar DefaultName).
	defaultSidecarDBName = "_vt"
)

// Relative paths; the store joins them to its root.

func cellInfoPath(cell string) string { return path.Join(cellsDir, cell, cellInfoFile) }

func keyspaceDirPath(ks string) string { return path.Join(keyspacesDir, ks) }

func keyspacePath(ks string) string { return path.Join(keyspacesDir, ks, keyspaceFile) }

func vschemaPath(ks string) string { return path.Join(keyspacesDir, ks, vschemaFile) }

func shardsDirPath(ks string) string { return path.Join(keyspacesDir, ks, shardsDir) }

func shardDirPath(ks, shard string) string { return path.Join(keyspacesDir, ks, shardsDir, shard) }

func shardPath(ks, shard string) string { return path.Join(shardDirPath(ks, shard), shardFile) }

func shardReplicationPath(ks, shard string) string {
	return path.Join(shardDirPath(ks, shard), shardReplicationFile)
}

func srvKeyspacePath(ks string) string { return path.Join(keyspacesDir, ks, srvKeyspaceFile) }

func tabletPath(a *topodatapb.TabletAlias) string {
	return path.Join(tabletsDir, AliasString(a), tabletFile)
}
