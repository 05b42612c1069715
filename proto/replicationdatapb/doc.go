// Package replicationdatapb holds the Go types generated from replicationdata.proto, Vitess's MySQL replication status messages.
package replicationdatapb
