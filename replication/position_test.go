package replication

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// positionCase is one entry of testdata/positions.json: either want (the
// canonical encoding) or bad_part (the part the error must name) is set.
type positionCase struct {
	In      string  `json:"in"`
	Want    string  `json:"want"`
	BadPart *string `json:"bad_part"`
}

func loadPositionCases(t *testing.T) []positionCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []positionCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestParsePositionGolden(t *testing.T) {
	for _, tc := range loadPositionCases(t) {
		t.Run(tc.In, func(t *testing.T) {
			pos, err := ParsePosition(tc.In)
			if tc.BadPart != nil {
				var pe *PositionError
				if !errors.Is(err, ErrInvalidPosition) || !errors.As(err, &pe) {
					t.Fatalf("ParsePosition(%q) = %v, %v; want ErrInvalidPosition", tc.In, pos, err)
				}
				if pe.Part != *tc.BadPart || pe.Input != tc.In || pe.Reason == "" {
					t.Errorf("error names part %q of %q (%s); want part %q of %q", pe.Part, pe.Input, pe.Reason, *tc.BadPart, tc.In)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePosition(%q): %v", tc.In, err)
			}
			if got := pos.String(); got != tc.Want {
				t.Errorf("ParsePosition(%q).String() = %q, want %q", tc.In, got, tc.Want)
			}
			// Round trip: the canonical form parses to an Equal position
			// and is a fixed point.
			again, err := ParsePosition(pos.String())
			if err != nil || !again.Equal(pos) || again.String() != tc.Want {
				t.Errorf("round trip of %q = %q, %v", pos.String(), again.String(), err)
			}
			if pos.IsZero() != (tc.Want == "") {
				t.Errorf("IsZero() = %v for %q", pos.IsZero(), tc.Want)
			}
		})
	}
}

func TestParseGTIDSet(t *testing.T) {
	tests := []struct {
		flavor  PositionFlavor
		in      string
		want    string
		wantErr bool
	}{
		{PositionMariaDB, "0-1-5", "MariaDB/0-1-5", false},
		{PositionMariaDB, "", "MariaDB/", false},
		{PositionMySQL56, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n16b1039f-22b6-11ed-b765-0a43f95f28a3:1",
			"MySQL56/16b1039f-22b6-11ed-b765-0a43f95f28a3:1,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", false},
		{PositionFilePos, "binlog.000001:4", "FilePos/binlog.000001:4", false},
		{"", "0-1-5", "", true},
		{"MySQL", "0-1-5", "", true},
	}
	for _, tc := range tests {
		t.Run(string(tc.flavor)+"/"+tc.in, func(t *testing.T) {
			pos, err := ParseGTIDSet(tc.flavor, tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidPosition) {
					t.Fatalf("ParseGTIDSet(%q, %q) error = %v, want ErrInvalidPosition", tc.flavor, tc.in, err)
				}
				return
			}
			if err != nil || pos.String() != tc.want || pos.Flavor() != tc.flavor || pos.IsZero() {
				t.Fatalf("ParseGTIDSet(%q, %q) = %q (flavor %q), %v; want %q", tc.flavor, tc.in, pos, pos.Flavor(), err, tc.want)
			}
		})
	}
}

func mustParse(t *testing.T, s string) Position {
	t.Helper()
	p, err := ParsePosition(s)
	if err != nil {
		t.Fatalf("ParsePosition(%q): %v", s, err)
	}
	return p
}

const (
	uuidA = "16b1039f-22b6-11ed-b765-0a43f95f28a3"
	uuidB = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
)

func TestAtLeast(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"MariaDB/0-1-5", "", true},
		{"", "MariaDB/0-1-5", false},
		{"", "MariaDB/", false},
		{"MariaDB/", "MariaDB/", true},
		{"MariaDB/0-1-5", "MariaDB/", true},
		{"MariaDB/", "MariaDB/0-1-5", false},
		{"MariaDB/0-1-5", "MariaDB/0-1-5", true},
		{"MariaDB/0-1-6", "MariaDB/0-1-5", true},
		{"MariaDB/0-1-5", "MariaDB/0-1-6", false},
		{"MariaDB/0-2-9", "MariaDB/0-1-5", true}, // server_id is not compared
		{"MariaDB/0-1-5,1-2-17", "MariaDB/1-2-17", true},
		{"MariaDB/0-1-5,1-2-17", "MariaDB/0-1-5,1-2-18", false},
		{"MariaDB/1-2-17", "MariaDB/0-1-5,1-2-17", false},
		{"MariaDB/0-1-5", "MySQL56/" + uuidA + ":1-5", false},
		{"MySQL56/" + uuidA + ":1-5", "MariaDB/0-1-5", false},
		{"MySQL56/" + uuidA + ":1-10", "MySQL56/" + uuidA + ":1-5", true},
		{"MySQL56/" + uuidA + ":1-10", "MySQL56/" + uuidA + ":3-7:9", true},
		{"MySQL56/" + uuidA + ":1-5", "MySQL56/" + uuidA + ":1-10", false},
		{"MySQL56/" + uuidA + ":1-5:7-10", "MySQL56/" + uuidA + ":5-7", false},
		{"MySQL56/" + uuidA + ":1-5:7-10", "MySQL56/" + uuidA + ":6", false},
		{"MySQL56/" + uuidA + ":1-5:7-10", "MySQL56/" + uuidA + ":2:8-10", true},
		{"MySQL56/" + uuidA + ":1-5:6-10", "MySQL56/" + uuidA + ":4-7", true}, // merged on parse
		{"MySQL56/" + uuidA + ":1-42:50-60," + uuidB + ":1-3", "MySQL56/" + uuidB + ":2", true},
		{"MySQL56/" + uuidA + ":1-42", "MySQL56/" + uuidA + ":1-42," + uuidB + ":1", false},
		{"MySQL56/" + uuidA + ":1-42", "MySQL56/", true},
		{"MySQL56/", "MySQL56/" + uuidA + ":1", false},
		{"FilePos/binlog.000002:4", "FilePos/binlog.000001:900", true},
		{"FilePos/binlog.000001:900", "FilePos/binlog.000001:900", true},
		{"FilePos/binlog.000001:899", "FilePos/binlog.000001:900", false},
		{"FilePos/binlog.000001:900", "FilePos/binlog.000002:4", false},
	}
	for _, tc := range tests {
		t.Run(tc.a+" >= "+tc.b, func(t *testing.T) {
			a, b := mustParse(t, tc.a), mustParse(t, tc.b)
			if got := a.AtLeast(b); got != tc.want {
				t.Errorf("%q.AtLeast(%q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"", "MariaDB/", false},
		{"MariaDB/", "MySQL56/", false},
		{"MariaDB/0-1-5,1-2-3", "MariaDB/1-2-3,0-1-5", true},
		{"MariaDB/0-1-5", "MariaDB/0-2-5", false},
		{"MySQL56/" + uuidA + ":1-5:6-10", "MySQL56/" + uuidA + ":1-10", true},
		{"MySQL56/" + uuidA + ":1-10", "MySQL56/" + uuidA + ":1-11", false},
		{"FilePos/b.1:4", "FilePos/b.1:4", true},
	}
	for _, tc := range tests {
		a, b := mustParse(t, tc.a), mustParse(t, tc.b)
		if got := a.Equal(b); got != tc.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := b.Equal(a); got != tc.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestUnion(t *testing.T) {
	tests := []struct {
		a, b, want string
		wantErr    bool
	}{
		{"", "MariaDB/0-1-5", "MariaDB/0-1-5", false},
		{"MariaDB/0-1-5", "", "MariaDB/0-1-5", false},
		{"MariaDB/0-1-5,2-1-1", "MariaDB/0-2-7,1-1-3", "MariaDB/0-2-7,1-1-3,2-1-1", false},
		{"MariaDB/0-1-9", "MariaDB/0-2-7", "MariaDB/0-1-9", false},
		{"MySQL56/" + uuidB + ":1-5", "MySQL56/" + uuidA + ":1," + uuidB + ":6-9:20",
			"MySQL56/" + uuidA + ":1," + uuidB + ":1-9:20", false},
		{"FilePos/b.1:4", "FilePos/b.2:4", "FilePos/b.2:4", false},
		{"MariaDB/0-1-5", "MySQL56/" + uuidA + ":1", "", true},
	}
	for _, tc := range tests {
		a, b := mustParse(t, tc.a), mustParse(t, tc.b)
		got, err := a.union(b)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidPosition) {
				t.Errorf("union(%q, %q) error = %v, want ErrInvalidPosition", tc.a, tc.b, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("union(%q, %q) = %q, %v; want %q", tc.a, tc.b, got, err, tc.want)
		}
		// Inputs are immutable.
		if a.String() != mustParse(t, tc.a).String() || b.String() != mustParse(t, tc.b).String() {
			t.Errorf("union modified its inputs: %q, %q", a, b)
		}
	}
}

func TestMariaDBGTIDs(t *testing.T) {
	p := mustParse(t, "MariaDB/1-2-17,0-101-42")
	want := []MariaDBGTID{{Domain: 0, ServerID: 101, Sequence: 42}, {Domain: 1, ServerID: 2, Sequence: 17}}
	got := p.MariaDBGTIDs()
	if !slices.Equal(got, want) {
		t.Fatalf("MariaDBGTIDs() = %v, want %v", got, want)
	}
	got[0].Sequence = 1 // the copy must not alias the position
	if p.String() != "MariaDB/0-101-42,1-2-17" {
		t.Errorf("position changed through MariaDBGTIDs(): %q", p)
	}
	if mustParse(t, "MySQL56/"+uuidA+":1").MariaDBGTIDs() != nil || (Position{}).MariaDBGTIDs() != nil {
		t.Error("MariaDBGTIDs() of a non-MariaDB position is not nil")
	}
	if p.GTIDSet() != "0-101-42,1-2-17" || (Position{}).GTIDSet() != "" {
		t.Errorf("GTIDSet() = %q", p.GTIDSet())
	}
}

func TestPositionJSON(t *testing.T) {
	type doc struct {
		Pos Position `json:"pos"`
	}
	for _, s := range []string{"", "MariaDB/0-1-5", "MySQL56/" + uuidA + ":1-3:5"} {
		data, err := json.Marshal(doc{Pos: mustParse(t, s)})
		if err != nil {
			t.Fatal(err)
		}
		var back doc
		if err := json.Unmarshal(data, &back); err != nil || back.Pos.String() != s {
			t.Errorf("JSON round trip of %q = %q (%s), %v", s, back.Pos, data, err)
		}
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"pos":"MariaDB/zzz"}`), &d); !errors.Is(err, ErrInvalidPosition) {
		t.Errorf("unmarshal of a bad position = %v, want ErrInvalidPosition", err)
	}
}
