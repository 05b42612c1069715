package stats

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestPromNames pins Vitess's name conversion on the golden cases in testdata: vttablet's
// expvar names and the Prometheus names dashboards query.
func TestPromNames(t *testing.T) {
	f, err := os.Open("testdata/promnames.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		n++
		if got := PromName("vttablet", in); got != want {
			t.Errorf("PromName(%q) = %q, want %q", in, got, want)
		}
	}
	if n < 10 {
		t.Fatalf("only %d golden cases read", n)
	}
}

func TestJoinLabels(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"t"}, "t"},
		{[]string{"db.t", "Select"}, "db_t.Select"},
		{[]string{"a", "b", "c"}, "a.b.c"},
	} {
		if got := JoinLabels(tt.in...); got != tt.want {
			t.Errorf("JoinLabels(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
