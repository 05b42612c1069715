// Package mysqlconn is a lean MySQL/MariaDB protocol client that reads result sets straight into Vitess's wire types.
//
// It is the query path between tabletd and its server: Execute returns a
// querypb.QueryResult, Stream sends batches of them, built from the packet
// bytes with no intermediate representation.
//
// # What does what
//
// go-mysql-org/go-mysql/client only connects: handshake, capability
// negotiation and the auth plugins. After the handshake the Conn owns the
// socket and frames packets itself (wire), writes COM_QUERY itself, and
// parses the text protocol itself. go-mysql's packet layer was measured and
// not kept (BenchmarkReadPackets, the 108 packets of a 100-row result): its
// ReadPacketReuseMem allocates nothing but copies every packet twice
// (bufio, then a pooled bytes.Buffer, then the caller's slice) and takes two
// sync.Pool buffers per packet, about 11× slower (6.9 µs against 0.63 µs)
// than returning payloads that alias one 32 KiB read buffer as wire does.
// Payloads of 16 MiB and more (multi-packets) are reassembled in a separate
// buffer; buffers a huge packet grew are released after the statement.
//
// Results are built in one pass over each packet. A Field's strings are
// substrings of one string per result. Rows are gathered in scratch buffers
// kept by the Conn (every row's Lengths, -1 for NULL, and Values,
// concatenated) and then copied into exactly-sized allocations: a result
// makes 8 allocations however many rows it has (QueryResult, Fields and
// their pointers, the names, Row structs and their pointers, lengths,
// values), plus 2 when its ctx can be cancelled (context.AfterFunc); a result
// of more than 1 MiB is materialized 1 MiB at a time. Stream sends batches
// that alias the scratch buffers themselves: once they have grown to a
// batch's size, a batch allocates nothing.
//
// # Protocol subset
//
// Text protocol (COM_QUERY) only. go-mysql's handshake cannot ask for
// CLIENT_DEPRECATE_EOF or CLIENT_SESSION_TRACK, so results end with EOF
// packets and QueryResult.session_state_changes is always empty (vttablet
// only fills it with the GTID of a transaction when session tracking is on).
// CLIENT_QUERY_ATTRIBUTES is switched off (plain COM_QUERY on MySQL 8 too),
// CLIENT_MULTI_RESULTS is on (CALL works), CLIENT_MULTI_STATEMENTS and
// CLIENT_FOUND_ROWS are options. No TLS, compression or LOCAL INFILE.
//
// # Types
//
// MySQLToType is Vitess's mapping (go/sqltypes/type.go); Field.flags get
// NUM_FLAG on numeric types as vttablet adds it. What MariaDB 10.11 puts on
// the wire, and so what vttablet shows against it: JSON columns are LONGTEXT
// with BINARY_FLAG and charset utf8mb4 (type 252), hence BLOB; UUID, INET4
// and INET6 are CHAR with BINARY_FLAG|UNSIGNED_FLAG, hence BINARY (with a
// text value); GEOMETRY is 255 with the value a 4-byte SRID then WKB;
// temporal columns use types 7/10/11/12 (never 17-19), 245 (JSON) and 242
// (VECTOR) never appear. MariaDB 10.x announces itself as "5.5.5-10.x…";
// ServerVersion strips the prefix as Vitess does.
//
// # Cancellation
//
// A statement's ctx is watched with context.AfterFunc (no goroutine). When it
// is done, the socket deadline becomes now+Config.CancelGrace: the caller
// sends KILL QUERY from another connection, the server answers the blocked
// read with error 1317 and the connection stays usable; if the server does not
// answer in time the connection is closed and the error (CR_SERVER_LOST)
// wraps the ctx's error.
package mysqlconn
