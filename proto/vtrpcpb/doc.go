// Package vtrpcpb holds the Go types generated from vtrpc.proto, Vitess's caller-id and RPC error wire messages.
package vtrpcpb
