package schema

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener of the test's root *sql.DB, closed by mariadbtest's
		// cleanup after goleak's check of a failing test.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}
