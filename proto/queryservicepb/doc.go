// Package queryservicepb holds the gRPC client and server code generated from queryservice.proto, Vitess's tablet query service.
package queryservicepb
