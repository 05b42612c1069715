package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// statement is one control statement. MySQL 8.0 servers older than the
// REPLICA/SOURCE renames (8.0.22 for START/STOP/RESET REPLICA and SHOW
// REPLICA STATUS, 8.0.23 for CHANGE REPLICATION SOURCE) answer the new
// syntax with ER_PARSE_ERROR; legacy is then run instead. Flavor values do
// not carry the patch version, so the fallback is decided by the server.
type statement struct {
	sql string
	// legacy is the pre-8.0.22/23 spelling, tried on FlavorMySQL80 only.
	legacy string
	// secret is a value (a password) that must never appear in an error:
	// it is replaced by "****" in the statement text and in the server's
	// error message.
	secret string
}

// redactedSecret replaces secrets in error texts.
const redactedSecret = "****"

// plain returns statements without legacy spelling or secret.
func plain(sqls ...string) []statement {
	out := make([]statement, len(sqls))
	for i, s := range sqls {
		out[i] = statement{sql: s}
	}
	return out
}

// execStatements runs stmts in order, stopping at the first error.
func execStatements(ctx context.Context, q Querier, flavor Flavor, stmts []statement) error {
	for _, st := range stmts {
		if err := execStatement(ctx, q, flavor, st); err != nil {
			return err
		}
	}
	return nil
}

// execStatement runs one statement, with the legacy fallback of MySQL 8.0.
func execStatement(ctx context.Context, q Querier, flavor Flavor, st statement) error {
	_, err := q.ExecContext(ctx, st.sql)
	text := st.sql
	if err != nil && st.legacy != "" && flavor == FlavorMySQL80 && isParseError(err) {
		text = st.legacy
		_, err = q.ExecContext(ctx, st.legacy)
	}
	if err != nil {
		return wrapStatementError(text, st.secret, err)
	}
	return nil
}

// isParseError reports ER_PARSE_ERROR (1064).
func isParseError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlParseError
}

// wrapStatementError returns "replication: <stmt>: <err>" with secret
// removed from both parts. A *mysql.MySQLError is replaced by a copy with a
// redacted message, so callers still find the errno with errors.As (and
// rpcerr.FromMySQL, which prints the driver's message, never sees the
// secret).
func wrapStatementError(stmt, secret string, err error) error {
	if secret == "" {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	redact := func(s string) string { return redactSecret(s, secret) }
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		clean := &mysql.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: redact(me.Message)}
		return fmt.Errorf("replication: %s: %w", redact(stmt), clean)
	}
	return &redactedError{msg: "replication: " + redact(stmt) + ": " + redact(err.Error()), err: err}
}

// minRedactedRun is the shortest piece of a secret that redactSecret
// removes when the whole secret is not there: servers quote only a prefix
// of long values (MariaDB: 64 characters and "..." in errno 1470, "String
// '...' is too long for MASTER_PASSWORD").
const minRedactedRun = 8

// redactSecret replaces in s the secret and every run of at least
// minRedactedRun of its characters (the whole secret when shorter) by
// "****". Over-redacting an unrelated run is harmless; leaking is not.
func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, redactedSecret)
	run := min(len(secret), minRedactedRun)
	for i := 0; i+run <= len(secret); i++ {
		for k := len(secret); k >= i+run; k-- {
			if part := secret[i:k]; strings.Contains(s, part) {
				s = strings.ReplaceAll(s, part, redactedSecret)
				break
			}
		}
	}
	return s
}

// redactedError carries a cause whose text may hold a secret: Error prints
// the redacted text, Unwrap keeps errors.Is working (context errors, driver
// sentinels).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// quote returns s as a single-quoted SQL string literal. Quotes are
// doubled, which works whatever the sql_mode; backslashes and control
// characters would be read differently under NO_BACKSLASH_ESCAPES, so
// callers reject them first (see checkQuotable).
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// checkQuotable rejects values quote cannot render the same way under every
// sql_mode.
func checkQuotable(what, s string) error {
	if i := strings.IndexFunc(s, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("%w: %s contains a backslash or control character (at byte %d), "+
			"which cannot be quoted the same way under every sql_mode", ErrInvalidSource, what, i)
	}
	return nil
}
