package plan

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// update rewrites the golden files in testdata/ from the current results: go test -run
// TestPlansGolden -update ./tabletserver/plan/ (then review the diff).
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
