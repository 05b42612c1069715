package acl

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"READER", Reader, false},
		{"writer", Writer, false},
		{"Admin", Admin, false},
		{"owner", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseRole(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrUnknownRole) {
				t.Errorf("ParseRole(%q) err = %v, want ErrUnknownRole", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != strings.ToUpper(tc.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Role(7).String(); s != "Role(7)" {
		t.Errorf("Role(7).String() = %q", s)
	}
}

func TestParseConfigGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Config
	}{
		{
			name: "snake_case",
			in:   `{"table_groups":[{"name":"g","table_names_or_prefixes":["t1","pre%"],"readers":["u"],"writers":["w"],"admins":["a"]}]}`,
			want: &Config{TableGroups: []TableGroup{{Name: "g", TableNamesOrPrefixes: []string{"t1", "pre%"},
				Readers: []string{"u"}, Writers: []string{"w"}, Admins: []string{"a"}}}},
		},
		{
			name: "camelCase",
			in:   `{"tableGroups":[{"name":"g","tableNamesOrPrefixes":["t1"],"readers":["u"]}]}`,
			want: &Config{TableGroups: []TableGroup{{Name: "g", TableNamesOrPrefixes: []string{"t1"}, Readers: []string{"u"}}}},
		},
		{name: "empty object", in: `{}`, want: &Config{TableGroups: []TableGroup{}}},
		{
			name: "disjoint prefixes and names across groups",
			in: `{"table_groups":[{"name":"a","table_names_or_prefixes":["ab%","t"]},
				{"name":"b","table_names_or_prefixes":["ac%","t2","a"]}]}`,
			want: &Config{TableGroups: []TableGroup{
				{Name: "a", TableNamesOrPrefixes: []string{"ab%", "t"}},
				{Name: "b", TableNamesOrPrefixes: []string{"ac%", "t2", "a"}},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigBad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // exact error text, or a prefix when ending in '*'

	}{
		// encoding/json's own wording follows "bad JSON: "; only the prefix is pinned.
		{"bad JSON", `{"table_groups":[`, `table acl: bad JSON: *`},
		{"wrong type", `{"table_groups":{}}`, `table acl: bad JSON: *`},
		{"trailing data", `{} {}`, `table acl: bad JSON: trailing data after the config object`},
		{"unknown top-level field", `{"table_groups":[],"extra":1}`, `table acl: bad JSON: json: unknown field "extra"`},
		{"unknown group field", `{"table_groups":[{"name":"g","reader":["u"]}]}`, `table acl: bad JSON: json: unknown field "reader"`},
		{"both spellings", `{"table_groups":[],"tableGroups":[]}`, `table acl: both "table_groups" and "tableGroups" given`},
		{"both entry spellings", `{"table_groups":[{"name":"g","table_names_or_prefixes":[],"tableNamesOrPrefixes":[]}]}`,
			`table acl: table_groups[0] (group "g"): both "table_names_or_prefixes" and "tableNamesOrPrefixes" given`},
		{"empty entry", `{"table_groups":[{"name":"g","table_names_or_prefixes":["t",""]}]}`,
			`table acl: table_groups[0] (group "g"): empty table name or prefix`},
		{"percent in middle", `{"table_groups":[{"name":"g","table_names_or_prefixes":["a%b"]}]}`,
			`table acl: table_groups[0] (group "g"): entry "a%b": '%' may only appear at the end, marking a prefix`},
		{"percent at start", `{"table_groups":[{"name":"g","table_names_or_prefixes":["%x"]}]}`,
			`table acl: table_groups[0] (group "g"): entry "%x": '%' may only appear at the end, marking a prefix`},
		{"double percent", `{"table_groups":[{"name":"g","table_names_or_prefixes":["x%%"]}]}`,
			`table acl: table_groups[0] (group "g"): entry "x%%": '%' may only appear at the end, marking a prefix`},
		{"same name in two groups", `{"table_groups":[{"name":"g","table_names_or_prefixes":["t1"]},{"name":"h","table_names_or_prefixes":["t1"]}]}`,
			`table acl: table_groups[1] (group "h"): entry "t1": overlaps with entry "t1" of group "g"`},
		{"same name twice in one group", `{"table_groups":[{"name":"g","table_names_or_prefixes":["t1","t1"]}]}`,
			`table acl: table_groups[0] (group "g"): entry "t1": overlaps with entry "t1" of group "g"`},
		{"name covered by prefix", `{"table_groups":[{"name":"g","table_names_or_prefixes":["order%"]},{"name":"h","table_names_or_prefixes":["orders"]}]}`,
			`table acl: table_groups[1] (group "h"): entry "orders": overlaps with entry "order%" of group "g"`},
		{"prefix covered by prefix", `{"table_groups":[{"name":"g","table_names_or_prefixes":["ord%"]},{"name":"h","table_names_or_prefixes":["or%"]}]}`,
			`table acl: table_groups[1] (group "h"): entry "or%": overlaps with entry "ord%" of group "g"`},
		{"catch-all prefix overlaps everything", `{"table_groups":[{"name":"g","table_names_or_prefixes":["t"]},{"name":"h","table_names_or_prefixes":["%"]}]}`,
			`table acl: table_groups[1] (group "h"): entry "%": overlaps with entry "t" of group "g"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseConfig = %+v, want error", cfg)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("errors.Is(err, ErrInvalidConfig) = false for %v", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("errors.As(*ConfigError) = false for %v", err)
			}
			if p, ok := strings.CutSuffix(tc.want, "*"); ok {
				if !strings.HasPrefix(err.Error(), p) || errors.Unwrap(err) == nil {
					t.Errorf("error = %s, want prefix %q and a wrapped cause", err, p)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error =\n  %s\nwant\n  %s", err, tc.want)
			}
		})
	}
}

func TestCompileValidates(t *testing.T) {
	_, err := Compile(&Config{TableGroups: []TableGroup{{Name: "g", TableNamesOrPrefixes: []string{"a%b"}}}})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Compile err = %v, want ErrInvalidConfig", err)
	}
	a, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Allowed("t", Reader, "u", nil) || !a.Allowed("dual", Reader, "u", nil) {
		t.Error("Compile(nil) must deny all but dual")
	}
	var nilACL *ACL
	if nilACL.Allowed("t", Admin, "u", nil) || !nilACL.Allowed("DUAL", Admin, "u", nil) {
		t.Error("nil ACL must deny all but dual")
	}
	if _, ok := nilACL.Group("t"); ok {
		t.Error("nil ACL has no groups")
	}
}

const matchConfig = `{"table_groups":[
	{"name":"orders","table_names_or_prefixes":["orders","order_items"],"readers":["bob","analysts"],"writers":["app"],"admins":["dba"]},
	{"name":"logs","table_names_or_prefixes":["log_%"],"readers":["ops"],"writers":["logger"],"admins":["dba"]},
	{"name":"stats","table_names_or_prefixes":["stat%","orders_archive"],"readers":["%","*"]}
]}`

func mustCompile(t *testing.T, js string) *ACL {
	t.Helper()
	cfg, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllowed(t *testing.T) {
	a := mustCompile(t, matchConfig)
	tests := []struct {
		name   string
		table  string
		role   Role
		user   string
		groups []string
		want   bool
		group  string // governing group; "" = none
	}{
		{"exact reader", "orders", Reader, "bob", nil, true, "orders"},
		{"exact second entry", "order_items", Reader, "bob", nil, true, "orders"},
		{"reader cannot write", "orders", Writer, "bob", nil, false, "orders"},
		{"writer is not implicitly reader", "orders", Reader, "app", nil, false, "orders"},
		{"admin is not implicitly writer", "orders", Writer, "dba", nil, false, "orders"},
		{"admin", "orders", Admin, "dba", nil, true, "orders"},
		{"via group", "orders", Reader, "carol", []string{"eng", "analysts"}, true, "orders"},
		{"group not listed", "orders", Reader, "carol", []string{"eng"}, false, "orders"},
		{"user name is not a group", "orders", Reader, "analysts", nil, true, "orders"},
		{"prefix match", "log_2024", Writer, "logger", nil, true, "logs"},
		{"prefix equal to table", "log_", Reader, "ops", nil, true, "logs"},
		{"prefix needs full prefix", "log", Reader, "ops", nil, false, ""},
		{"other prefix", "stats_daily", Reader, "%", nil, true, "stats"},
		{"no wildcard members", "stats_daily", Reader, "anyone", nil, false, "stats"},
		{"exact in prefix group", "orders_archive", Reader, "*", nil, true, "stats"},
		{"exact does not prefix-match", "orders2", Reader, "bob", nil, false, ""},
		{"case sensitive exact", "Orders", Reader, "bob", nil, false, ""},
		{"case sensitive prefix", "LOG_x", Reader, "ops", nil, false, ""},
		{"case sensitive user", "orders", Reader, "Bob", nil, false, "orders"},
		{"no match denied", "users", Reader, "dba", nil, false, ""},
		{"empty group list role", "stats_x", Admin, "dba", nil, false, "stats"},
		{"dual", "dual", Admin, "nobody", nil, true, ""},
		{"DUAL", "DUAL", Writer, "", nil, true, ""},
		{"invalid role", "orders", Role(3), "dba", nil, false, "orders"},
		{"negative role", "orders", Role(-1), "bob", nil, false, "orders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Allowed(tc.table, tc.role, tc.user, tc.groups); got != tc.want {
				t.Errorf("Allowed(%q, %v, %q, %q) = %v, want %v", tc.table, tc.role, tc.user, tc.groups, got, tc.want)
			}
			err := a.Check(tc.table, tc.role, tc.user, tc.groups)
			if (err == nil) != tc.want {
				t.Errorf("Check = %v, want allowed=%v", err, tc.want)
			}
			g, ok := a.Group(tc.table)
			if g != tc.group || ok != (tc.group != "") {
				t.Errorf("Group(%q) = %q, %v; want %q", tc.table, g, ok, tc.group)
			}
		})
	}
}

// TestLookupPrecedence exercises precedence on a hand-built ACL, since
// Validate forbids the overlapping configs that would need it.
func TestLookupPrecedence(t *testing.T) {
	exact, short, long := &group{name: "exact"}, &group{name: "short"}, &group{name: "long"}
	a := &ACL{
		exact:    map[string]*group{"orders": exact},
		prefixes: []prefixEntry{{"order", long}, {"or", short}},
	}
	for table, want := range map[string]string{"orders": "exact", "order_x": "long", "ore": "short", "x": ""} {
		if g, _ := a.Group(table); g != want {
			t.Errorf("Group(%q) = %q, want %q", table, g, want)
		}
	}
	// Compile must order prefixes longest first regardless of config order.
	c, err := Compile(&Config{TableGroups: []TableGroup{
		{Name: "a", TableNamesOrPrefixes: []string{"x%"}},
		{Name: "b", TableNamesOrPrefixes: []string{"yyy%"}},
		{Name: "c", TableNamesOrPrefixes: []string{"zz%"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(c.prefixes); i++ {
		if len(c.prefixes[i-1].prefix) < len(c.prefixes[i].prefix) {
			t.Fatalf("prefixes not longest-first: %+v", c.prefixes)
		}
	}
}

func TestDeniedError(t *testing.T) {
	a := mustCompile(t, matchConfig)
	err := a.Check("orders", Reader, "mallory", []string{"eng"})
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("Check err = %v, want *DeniedError", err)
	}
	if *de != (DeniedError{User: "mallory", Table: "orders", Role: Reader}) {
		t.Errorf("DeniedError = %+v", *de)
	}
	const want = `table acl: user "mallory" lacks READER on table "orders"`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestCompileIsolatedFromConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(matchConfig))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TableGroups[0].Readers[0] = "eve"
	cfg.TableGroups[0].TableNamesOrPrefixes[0] = "x"
	if !a.Allowed("orders", Reader, "bob", nil) || a.Allowed("orders", Reader, "eve", nil) {
		t.Error("mutating the Config changed the compiled ACL")
	}
}

func TestConcurrentReads(t *testing.T) {
	a := mustCompile(t, matchConfig)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 2000 {
				if !a.Allowed("orders", Reader, "bob", nil) || a.Allowed("users", Reader, "bob", nil) {
					t.Errorf("goroutine %d iteration %d: wrong answer", i, j)
					return
				}
				if g, ok := a.Group("log_x"); !ok || g != "logs" {
					t.Errorf("goroutine %d: Group = %q", i, g)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestGroupNamesAreLabels: vttablet accepts unnamed and repeated group names (its own example
// config has none), so tabletd must too; only table entries may not overlap.
func TestGroupNamesAreLabels(t *testing.T) {
	for _, cfg := range []string{
		`{"table_groups":[{"table_names_or_prefixes":["t"],"readers":["u"]}]}`,
		`{"table_groups":[{"name":"g","table_names_or_prefixes":["a"]},{"name":"g","table_names_or_prefixes":["b"]}]}`,
	} {
		c, err := ParseConfig([]byte(cfg))
		if err != nil {
			t.Fatalf("%s: %v", cfg, err)
		}
		if _, err := Compile(c); err != nil {
			t.Fatalf("%s: compile: %v", cfg, err)
		}
	}
}
