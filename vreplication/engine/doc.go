// Package engine provides the target side of VReplication: the engine that runs one controller per _vt.vreplication stream, copying and replaying a source tablet's rows into this tablet's database.
//
// # What it owns
//
// The engine runs on a PRIMARY only (vttablet opens its engine on PRIMARY and closes it on
// every other type). Each row of <sidecar>.vreplication for this tablet's database is one
// stream, driven by a controller goroutine: it picks a source tablet (topology + StreamHealth,
// honouring the row's cell and tablet_types with vttablet's "in_order:" hint), then runs the
// stream until it stops, fails or is restarted by a change to its row. Errors are written to
// the row's message and retried with backoff; errors that cannot heal (a bad filter, a
// missing table, a position of the other flavor, a source binlog purged past the stream's
// position) put the stream in state Error with the reason, as vttablet's "terminal error".
//
// # Copy phase
//
// A stream whose pos is empty starts by recording one _vt.copy_state row per target table
// (state Copying). Tables are copied with VStreamRows from their lastpk. Several tables are
// copied at once when the source gave them the same snapshot position (see copier.go for why
// that condition keeps the copy exact), and each table's batches are inserted by several
// connections whose commits stay in order, so _vt.copy_state.lastpk only moves forward and
// a restart resumes from the last committed batch. Between groups of tables the stream
// catches up on the binlog (catch-up) and brings its position exactly to the next snapshot
// (fast-forward), applying events only to what is already copied: rows beyond a table's
// lastpk are left for the copy.
//
// # Replication phase
//
// The player reads VStream from pos and applies each source transaction in a target
// transaction that also advances pos, transaction_timestamp and time_updated; consecutive
// transactions already received are applied in one target transaction. While idle, source
// heartbeats keep time_heartbeat and time_updated fresh (vtctld's SwitchTraffic refuses a
// stream that looks lagging). stop_pos, on_ddl (IGNORE, STOP, EXEC, EXEC_IGNORE) and journals
// are handled as vttablet does.
//
// # Statements
//
// Exec runs the restricted statement set of VReplicationExec (insert into vreplication or
// resharding_journal; update or delete of vreplication rows selected by id or workflow; select
// from vreplication, resharding_journal, copy_state and vreplication_log) and starts, restarts
// or stops the controllers the statement concerns, as vttablet's engine does.
package engine
