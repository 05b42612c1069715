// Package vstreamer provides the source side of VReplication: VStream (the binlog, from a
// MariaDB or MySQL GTID position, as Vitess VEvents through a filter), VStreamRows (a
// filtered table scan from a consistent snapshot, with the snapshot's position),
// VStreamTables and VStreamResults, with Vitess's filter rules and vindexes.
package vstreamer
