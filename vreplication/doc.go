// Package vreplication provides filtered replication: the binlog streamer, row filters, and the copy and catch-up appliers.
package vreplication
