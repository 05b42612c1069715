// Package pool provides the MySQL connection pools of the query service (query, stream, transaction and DBA pools): one bounded, FIFO-fair pool type, generic over the connection.
package pool
