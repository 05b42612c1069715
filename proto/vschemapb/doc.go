// Package vschemapb holds the Go types generated from vschema.proto, the Vitess VSchema and SrvVSchema records.
package vschemapb
