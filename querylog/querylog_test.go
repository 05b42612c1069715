package querylog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/querypb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)

func entry() Entry {
	return Entry{Method: "Execute", RemoteAddr: "127.0.0.1:5000", Username: "userData1", EffectiveCaller: "app",
		Start: t0, End: t0.Add(1500 * time.Microsecond), SQL: "select * from t where id = :id and name = :n",
		BindVars: map[string]*querypb.BindVariable{
			"n":  {Type: querypb.Type_VARCHAR, Value: []byte("secret-name")},
			"id": {Type: querypb.Type_INT64, Value: []byte("42")},
			"l":  {Type: querypb.Type_TUPLE, Values: []*querypb.Value{{}, {}}},
		},
		TransactionID: 7, RowsAffected: 0, RowsReturned: 3}
}

// TestTextFormat: vttablet's columns, tab-separated and tab-terminated; string bind values
// are never copied (their size only).
func TestTextFormat(t *testing.T) {
	line := string(DefaultConfig().format(nil, entry(), ""))
	want := "Execute\t127.0.0.1:5000\tuserData1\t'userData1'\t'app'\t2026-03-04 05:06:07.890000\t2026-03-04 05:06:07.891500\t0.001500\t\t" +
		`"select * from t where id = :id and name = :n"` + "\t" +
		`{"id": {"type": "INT64", "value": 42}, "l": {"type": "TUPLE", "value": "2 items"}, "n": {"type": "VARCHAR", "value": "11 bytes"}}` +
		"\t1\t" + `"select * from t where id = :id and name = :n"` + "\tmysql\t0.000000\t0.000000\t0\t7\t3\t\"\"\t\"\"\t\n"
	if line != want {
		t.Fatalf("line\n%q\nwant\n%q", line, want)
	}
	if strings.Contains(line, "secret-name") {
		t.Fatal("a string bind value is in the log")
	}
}

func TestJSONFormat(t *testing.T) {
	c := DefaultConfig()
	c.Format = "json"
	e := entry()
	e.Err = errors.New("target: ks.0.replica: vttablet: rpc error: code = NotFound")
	var m map[string]any
	if err := json.Unmarshal(c.format(nil, e, "row"), &m); err != nil {
		t.Fatal(err)
	}
	if m["Method"] != "Execute" || m["OriginalSQL"] != e.SQL || m["Error"] != e.Err.Error() || m["TransactionID"] != float64(7) || m["EmitReason"] != "row" {
		t.Fatalf("json entry %v", m)
	}
}

func TestRedact(t *testing.T) {
	c := DefaultConfig()
	c.Redact = true
	line := string(c.format(nil, entry(), ""))
	if strings.Count(line, "[REDACTED]") != 2 || strings.Contains(line, `"value": 42`) {
		t.Fatalf("not redacted: %q", line)
	}
}

// TestFilters: every condition set must hold, or any one with EmitOnAny.
func TestFilters(t *testing.T) {
	slow := entry()
	slow.End = slow.Start.Add(2 * time.Second)
	failed := entry()
	failed.Err = errors.New("boom")
	for _, tc := range []struct {
		name string
		cfg  Config
		e    Entry
		want bool
	}{
		{"no filter", Config{}, entry(), true},
		{"rows below", Config{RowThreshold: 4}, entry(), false},
		{"rows reached", Config{RowThreshold: 3}, entry(), true},
		{"time below", Config{TimeThreshold: time.Second}, entry(), false},
		{"time reached", Config{TimeThreshold: time.Second}, slow, true},
		{"tag absent", Config{FilterTag: "/* tag */"}, entry(), false},
		{"tag present", Config{FilterTag: "where id"}, entry(), true},
		{"errors only, ok", Config{ErrorsOnly: true}, entry(), false},
		{"errors only, failed", Config{ErrorsOnly: true}, failed, true},
		{"all of two, one met", Config{RowThreshold: 1, TimeThreshold: time.Second}, entry(), false},
		{"any of two, one met", Config{RowThreshold: 1, TimeThreshold: time.Second, EmitOnAny: true}, entry(), true},
		{"any of two, none met", Config{RowThreshold: 10, TimeThreshold: time.Second, EmitOnAny: true}, entry(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := tc.cfg.emit(tc.e); got != tc.want {
				t.Fatalf("emit = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLoggerFile: lines from concurrent callers land whole, appended to the file; after
// Close nothing more is written and Record does not fail.
func TestLoggerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Path = path
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if err := l.Record(entry()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(entry()); err != nil {
		t.Fatalf("Record after Close: %v", err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 401 || lines[0] != "earlier" {
		t.Fatalf("%d lines, first %q; want 401 with the earlier content kept", len(lines), lines[0])
	}
	whole := strings.TrimSuffix(string(c.format(nil, entry(), "")), "\n")
	for _, ln := range lines[1:] {
		if ln != whole {
			t.Fatalf("torn line %q", ln)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		mention string
	}{
		{"format", Config{Path: "x", Format: "xml"}, "--querylog-format"},
		{"no path", Config{Format: "text"}, "--log-queries-to-file"},
		{"time", Config{Path: "x", Format: "text", TimeThreshold: -1}, "--querylog-time-threshold"},
		{"unwritable", Config{Path: filepath.Join(t.TempDir(), "no", "dir", "q.log"), Format: "text"}, "--log-queries-to-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v, want one naming %s", err, tc.mention)
			}
		})
	}
}
