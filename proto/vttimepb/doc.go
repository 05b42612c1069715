// Package vttimepb holds the Go types generated from vttime.proto, Vitess's timestamp and duration wire messages.
package vttimepb
