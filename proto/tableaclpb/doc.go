// Package tableaclpb holds the Go types generated from tableacl.proto, the binary form of the table ACL configuration.
package tableaclpb
