package tabletserver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/rpcerr"
)

// mysqlError turns an error from MySQL into the error a client sees: the vtrpc code from the
// errno table, and vttablet's message layout "<msg> (errno N) (sqlstate S) (CallerID: u): Sql:
// "…", BindVars: {…}" — vtgate extracts errno and sqlstate from it with a regexp and hands the
// real MySQL error to its own clients. Non-MySQL errors keep their code.
func mysqlError(err error, caller, sql string, bindNames []string) error {
	if err == nil {
		return nil
	}
	var se *mysqlconn.SQLError
	if !errors.As(err, &se) {
		return err
	}
	who := ""
	if caller != "" {
		who = " (CallerID: " + caller + ")"
	}
	// Bind variable values are left out: they may carry personal data.
	return rpcerr.WithCause(rpcerr.ErrnoCode(se.Num),
		fmt.Sprintf("%s (errno %d) (sqlstate %s)%s: Sql: %q, BindVars: {%s}", se.Message, se.Num, se.State, who,
			truncateSQL(sql), strings.Join(bindNames, ", ")), se)
}

// truncateSQL bounds the statement quoted in an error (huge INSERTs would otherwise fill
// the message; the wire limit truncates anyway).
func truncateSQL(sql string) string {
	const max = 2048
	if len(sql) <= max {
		return sql
	}
	return sql[:max] + " [TRUNCATED]"
}
