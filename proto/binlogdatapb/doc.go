// Package binlogdatapb holds the Go types generated from binlogdata.proto, VReplication's wire messages: binlog sources and filters, the VEvent stream and the VStream* requests.
package binlogdatapb
