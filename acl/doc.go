// Package acl provides table access control lists and query rules checked on every query path.
package acl
