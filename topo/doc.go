// Package topo reads and writes a tablet's records in Vitess's etcd2 topology layout.
package topo
