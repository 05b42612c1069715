// Package logutilpb holds the Go types generated from logutil.proto, Vitess's streamed log event messages.
package logutilpb
