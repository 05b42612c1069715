// Package tabletmanagerservicepb holds the gRPC client and server code generated from tabletmanagerservice.proto, Vitess's tablet manager service.
package tabletmanagerservicepb
