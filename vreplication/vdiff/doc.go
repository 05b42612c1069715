// Package vdiff provides VDiff v2 on the target primary of a VReplication workflow: the TabletManager VDiff actions (create, show, stop, resume, delete) over the _vt.vdiff, vdiff_table and vdiff_log tables, and the differ that compares a workflow's tables row by row between its source shards and this tablet.
//
// # How a table is compared
//
// For each table the differ synchronises both sides at one position, as vttablet does: under
// the topology's named lock <keyspace>/<workflow> it stops the workflow's streams (state
// Stopped, message "for vdiff") and reads their positions; each source tablet waits for its
// stream's position (TabletManager WaitForPosition), then opens a consistent snapshot with
// VStreamRows, whose first response names the snapshot's GTID position; each stream runs to
// exactly that position (stop_pos, "synchronizing for vdiff"); then the target's own
// snapshot is opened and the workflow runs again (state Running, stop_pos and message
// cleared) — on every path, errors and cancellation included. Both snapshots stay open while
// the rows stream in key order and are merge-compared: the sources (several for a Reshard
// merge) are merged into one stream, and rows are matched by the source's key, ordered with
// the target column's collation (text keys in a case- or accent-insensitive collation are
// compared by MySQL's own WEIGHT_STRING of the target collation).
//
// The target's rows are read from this primary's MySQL (its snapshot taken after the streams
// stopped at their positions), not from a picked target tablet: a replica may lag behind the
// stop position, this primary cannot.
//
// # Progress
//
// vdiff_table.rows_compared, lastpk (prototext VDiffTableLastPK) and report (the JSON
// DiffReport vtctldclient parses) are saved every Config.ProgressRows rows and when a table
// diff ends, so resume and auto-retry continue after the last key compared, and a diff that
// exceeds --max-diff-duration restarts from there with fresh snapshots.
package vdiff
