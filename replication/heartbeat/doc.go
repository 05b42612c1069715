// Package heartbeat writes vttablet's replication heartbeat on a primary and reads it on a
// replica to measure replication lag.
//
// The Writer upserts the row "<keyspace>:<shard>" of <sidecar>.heartbeat(keyspaceShard,
// tabletUid, ts) with ts = now in nanoseconds every Interval (vttablet: --heartbeat-interval,
// default and maximum 1s), or, with OnDemandDuration set (--heartbeat-on-demand-duration), only
// for that long after RequestHeartbeats. It connects with the credentials it is given (the
// application user, which lacks SUPER / READ ONLY ADMIN), so a read_only server refuses its
// writes (errno 1290): that is counted as "not writable now", not logged as a failure.
//
// The Reader reads the row's ts every Interval on a replica; the lag is now - ts. It is
// unknown, never 0, while there is no row, the read fails, or no read has succeeded lately.
// A primary that stopped writing is indistinguishable from a lagging replica, so a heartbeat
// that keeps getting older is reported as a growing lag (the honest upper bound: the replica
// has applied everything up to ts), with a reason saying what it may mean.
//
// Writer and Reader can be opened again after Close (the tablet opens the writer when it
// becomes PRIMARY and closes it on demotion); each owns one goroutine while open, stopped by
// Close. Their metrics live on the injected registry with constant labels keyspace and shard.
package heartbeat
