// Package querypb holds the Go types generated from query.proto, Vitess's query wire messages.
package querypb
