// Package tabletmanagerdatapb holds the Go types generated from tabletmanagerdata.proto, the Vitess tablet manager request and response messages.
package tabletmanagerdatapb
