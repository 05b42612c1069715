// Package schema reads the tablet's schema as Vitess's SchemaDefinition and runs the schema and fetch RPCs.
//
// The Engine behind the TabletManager RPCs GetSchema, ReloadSchema, PreflightSchema,
// ApplySchema, ExecuteFetchAsDba, ExecuteMultiFetchAsDba, ExecuteFetchAsAllPrivs,
// ExecuteFetchAsApp, ExecuteQuery, GetPermissions, LockTables and UnlockTables does what
// vttablet v23 does, byte for byte where vtctld compares or parses the answer:
//
//   - GetSchema normalises like Vitess's mysqlctl: the database name becomes
//     {{.DatabaseName}} in CREATE DATABASE and in views, " AUTO_INCREMENT=N" is removed,
//     tables are sorted by name. CopySchemaShard and the ApplySchema before/after checks
//     compare these definitions between tablets, so any difference is a failure there.
//   - MySQL errors keep vttablet's "<message> (errno N) (sqlstate S) during query: <sql>"
//     text (rpcerr.FromMySQL): vtctld recovers errno 1146, 1051 and 1142 from it.
//   - Row limits are Vitess's: more rows than max_rows fails with ABORTED "Row count
//     exceeded N", and max_rows 0 allows no row at all.
//
// # Statements
//
// A multi-statement text is cut into statements by TiDB's MySQL parser (the parser the
// query service plans with), never by a hand-written splitter. Each statement then runs on
// its own, so a failure names the statement, and the statements before it stay applied
// (DDL cannot be rolled back; the error says how many ran). The parser does not know all
// of MariaDB's syntax (UUID and INET6 columns, CREATE OR REPLACE TABLE, system versioning,
// CHANGE MASTER). When it cannot read a text:
//
//   - ExecuteFetchAsDba, ExecuteMultiFetchAsDba and the other fetches send the text as one
//     statement on a connection without CLIENT_MULTI_STATEMENTS: the server runs it if it
//     is one statement and refuses the whole text with a syntax error (errno 1064, nothing
//     executed) if it is several. The single-statement rule of ExecuteFetchAsDba therefore
//     always holds — enforced by the parser, or else by the server itself.
//   - ApplySchema and PreflightSchema run such a script in one multi-statement round trip,
//     as the mysql client Vitess uses would: the server stops at the first failing
//     statement and its error is returned.
//
// # Connections
//
// Every RPC opens its own connection for the role it runs as and closes it afterwards, as
// vttablet's DBA and all-privileges fetches do; session settings (sql_log_bin,
// foreign_key_checks, sql_mode) therefore never leak into another call. LockTables keeps
// its connection until UnlockTables, the lock timeout, or Close.
package schema
