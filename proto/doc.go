// Package proto holds tabletd's .proto files, wire-compatible with Vitess v23, from which "make proto" generates the Go packages in the <name>pb subdirectories.
package proto
