package mysqlconn

import (
	"errors"
	"strconv"
)

// MySQL error numbers this package produces or that callers commonly test for.
// Server errors (1xxx, 3xxx, 4xxx) come from the server's ERR packet;
// client errors (2xxx) are produced here, with libmysqlclient's numbers.
const (
	ERDupEntry         uint16 = 1062 // ER_DUP_ENTRY
	ERParseError       uint16 = 1064 // ER_PARSE_ERROR
	ERQueryInterrupted uint16 = 1317 // ER_QUERY_INTERRUPTED: KILL QUERY
	ERStatementTimeout uint16 = 1969 // ER_STATEMENT_TIMEOUT: MariaDB max_statement_time
	ERQueryTimeout     uint16 = 3024 // ER_QUERY_TIMEOUT: MySQL max_execution_time

	CRUnknownError       uint16 = 2000 // CR_UNKNOWN_ERROR
	CRConnectionError    uint16 = 2002 // CR_CONNECTION_ERROR: cannot connect to the unix socket
	CRConnHostError      uint16 = 2003 // CR_CONN_HOST_ERROR: cannot connect over TCP
	CRServerGone         uint16 = 2006 // CR_SERVER_GONE_ERROR: the request could not be sent
	CRServerHandshakeErr uint16 = 2012 // CR_SERVER_HANDSHAKE_ERR
	CRServerLost         uint16 = 2013 // CR_SERVER_LOST: the connection broke while waiting for the answer
	CRCommandsOutOfSync  uint16 = 2014 // CR_COMMANDS_OUT_OF_SYNC: packet sequence mismatch
	CRMalformedPacket    uint16 = 2027 // CR_MALFORMED_PACKET
)

// SSUnknownSQLState is the SQLSTATE of client-side errors ("general error").
const SSUnknownSQLState = "HY000"

// SQLError is a MySQL error: either the server's ERR packet or a client-side
// failure (Num 2xxx). Error() ends with " (errno N) (sqlstate S)", the form
// vtgate parses back into a MySQL error for its clients.
type SQLError struct {
	Num     uint16
	State   string
	Message string
	// cause is the underlying error of client-side failures (a network error,
	// io.EOF, or the context's error after a cancellation); nil for server errors.
	cause error
}

// Error returns "<message> (errno <n>) (sqlstate <s>)".
func (e *SQLError) Error() string {
	b := make([]byte, 0, len(e.Message)+32)
	b = append(b, e.Message...)
	b = append(b, " (errno "...)
	b = strconv.AppendUint(b, uint64(e.Num), 10)
	b = append(b, ") (sqlstate "...)
	b = append(b, e.State...)
	b = append(b, ')')
	return string(b)
}

// Unwrap returns the cause of a client-side error (nil for server errors), so
// errors.Is(err, context.Canceled) works on a cancelled query.
func (e *SQLError) Unwrap() error { return e.cause }

// Errno returns the MySQL error number (rpcerr.MySQLErrno).
func (e *SQLError) Errno() uint16 { return e.Num }

// SQLState returns the SQLSTATE (rpcerr.MySQLErrno).
func (e *SQLError) SQLState() string { return e.State }

// IsConnectionError reports whether err means the connection can no longer be
// used (client errors 2000-2099: lost, gone, malformed packets, out of sync).
func IsConnectionError(err error) bool {
	var se *SQLError
	return errors.As(err, &se) && se.Num >= CRUnknownError && se.Num < 2100
}

// clientError builds a client-side SQLError.
func clientError(num uint16, msg string, cause error) *SQLError {
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &SQLError{Num: num, State: SSUnknownSQLState, Message: msg, cause: cause}
}

// ErrRowsExceeded is returned (wrapped, test with errors.Is) by Execute when
// the result has more rows than maxRows. The rest of the result has been read
// and discarded: the connection is still usable.
var ErrRowsExceeded = errors.New("mysqlconn: row count exceeded")

// ErrMultipleResults is returned (wrapped, test with errors.Is) when one
// statement string produced more than one result (a multi-statement query, or
// a CALL of a procedure that returns a result set). Every result has been
// read and discarded: the connection is still usable.
var ErrMultipleResults = errors.New("mysqlconn: unexpected multiple results")

// errClosed is returned by Execute and Stream on a closed connection.
func errClosed() error {
	return clientError(CRServerGone, "mysqlconn: connection is closed", nil)
}
