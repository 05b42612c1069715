// Package topodatapb holds the Go types generated from topodata.proto, the Vitess topology records (tablets, shards, keyspaces, serving graphs).
package topodatapb
