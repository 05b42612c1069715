package topo

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

func TestParseTabletAlias(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    *topodatapb.TabletAlias
		wantErr error
	}{
		{in: "zone1-0000000100", want: &topodatapb.TabletAlias{Cell: "zone1", Uid: 100}},
		{in: "zone1-100", want: &topodatapb.TabletAlias{Cell: "zone1", Uid: 100}},
		{in: "us-east-1a-4294967295", want: &topodatapb.TabletAlias{Cell: "us-east-1a", Uid: 4294967295}},
		{in: "my.cell_2-0", want: &topodatapb.TabletAlias{Cell: "my.cell_2", Uid: 0}},
		{in: "", wantErr: ErrInvalidAlias},
		{in: "zone1", wantErr: ErrInvalidAlias},
		{in: "zone1-", wantErr: ErrInvalidAlias},
		{in: "-100", wantErr: ErrInvalidAlias},
		{in: "zone1-abc", wantErr: ErrInvalidAlias},
		{in: "zone1-+100", wantErr: ErrInvalidAlias},
		{in: "zone1--100", want: &topodatapb.TabletAlias{Cell: "zone1-", Uid: 100}}, // as Vitess's regexp
		{in: "zone1-4294967296", wantErr: ErrInvalidAlias},
		{in: "zone/1-100", wantErr: ErrInvalidAlias},
		{in: "zone 1-100", wantErr: ErrInvalidAlias},
	} {
		got, err := ParseTabletAlias(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseTabletAlias(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !proto.Equal(got, tt.want) {
			t.Errorf("ParseTabletAlias(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestAliasString(t *testing.T) {
	for _, tt := range []struct {
		in   *topodatapb.TabletAlias
		want string
	}{
		{&topodatapb.TabletAlias{Cell: "zone1", Uid: 100}, "zone1-0000000100"},
		{&topodatapb.TabletAlias{Cell: "zone1", Uid: 4294967295}, "zone1-4294967295"},
		{&topodatapb.TabletAlias{Cell: "c", Uid: 0}, "c-0000000000"},
		{nil, "<nil>"},
	} {
		if got := AliasString(tt.in); got != tt.want {
			t.Errorf("AliasString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidateShardName(t *testing.T) {
	kr := func(start, end []byte) *topodatapb.KeyRange { return &topodatapb.KeyRange{Start: start, End: end} }
	for _, tt := range []struct {
		in        string
		canonical string
		kr        *topodatapb.KeyRange
		wantErr   error
	}{
		{in: "0", canonical: "0"},
		{in: "shard_a", canonical: "shard_a"},
		{in: "-", canonical: "-", kr: kr([]byte{}, []byte{})},
		{in: "-80", canonical: "-80", kr: kr([]byte{}, []byte{0x80})},
		{in: "80-", canonical: "80-", kr: kr([]byte{0x80}, []byte{})},
		{in: "80-c0", canonical: "80-c0", kr: kr([]byte{0x80}, []byte{0xc0})},
		{in: "80-C0", canonical: "80-c0", kr: kr([]byte{0x80}, []byte{0xc0})},
		{in: "4000-8000", canonical: "4000-8000", kr: kr([]byte{0x40, 0}, []byte{0x80, 0})},
		{in: "", wantErr: ErrInvalidShard},
		{in: "80-40", wantErr: ErrInvalidShard},
		{in: "80-80", wantErr: ErrInvalidShard},
		{in: "8-", wantErr: ErrInvalidShard},
		{in: "zz-", wantErr: ErrInvalidShard},
		{in: "-80-c0", wantErr: ErrInvalidShard},
		{in: "a/b", wantErr: ErrInvalidShard},
		{in: "0 ", wantErr: ErrInvalidShard},
	} {
		canonical, got, err := ValidateShardName(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ValidateShardName(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || canonical != tt.canonical || !proto.Equal(got, tt.kr) || (got == nil) != (tt.kr == nil) {
			t.Errorf("ValidateShardName(%q) = %q, %v, %v; want %q, %v", tt.in, canonical, got, err, tt.canonical, tt.kr)
		}
	}
}

func TestValidateKeyspaceName(t *testing.T) {
	long := string(make([]byte, 65))
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"commerce", true},
		{"my-ks_2", true},
		{"", false},
		{"a.b", false},
		{long, false},
	} {
		err := ValidateKeyspaceName(tt.in)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidKeyspace)) {
			t.Errorf("ValidateKeyspaceName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{GlobalServerAddress: "127.0.0.1:2379", GlobalRoot: "/vitess/global", Cell: "zone1"}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"several endpoints", func(c *Config) { c.GlobalServerAddress = "a:1, b:2" }, true},
		{"no address", func(c *Config) { c.GlobalServerAddress = "" }, false},
		{"empty endpoint", func(c *Config) { c.GlobalServerAddress = "a:1,,b:2" }, false},
		{"no root", func(c *Config) { c.GlobalRoot = "" }, false},
		{"no cell", func(c *Config) { c.Cell = "" }, false},
		{"bad cell", func(c *Config) { c.Cell = "zone/1" }, false},
		{"negative request timeout", func(c *Config) { c.RequestTimeout = -time.Second }, false},
		{"sub-second lease", func(c *Config) { c.LockTTL = 500 * time.Millisecond }, false},
	} {
		c := good
		tt.edit(&c)
		if err := c.Validate(); tt.ok != (err == nil) {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestKeyRangesIntersect(t *testing.T) {
	mk := func(s string) *topodatapb.KeyRange {
		_, kr, err := ValidateShardName(s)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"0", "-80", true},
		{"-", "80-", true},
		{"-80", "80-", false},
		{"-80", "40-c0", true},
		{"-8000", "80-", false}, // trailing zeros do not matter
		{"80-c0", "c0-", false},
		{"80-c0", "a0-", true},
	} {
		if got := keyRangesIntersect(mk(tt.a), mk(tt.b)); got != tt.want {
			t.Errorf("intersect(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestBuildSrvKeyspace(t *testing.T) {
	serving := func(names ...string) map[string]*topodatapb.Shard {
		m := map[string]*topodatapb.Shard{}
		for _, n := range names {
			_, kr, err := ValidateShardName(n)
			if err != nil {
				t.Fatal(err)
			}
			m[n] = &topodatapb.Shard{KeyRange: kr, IsPrimaryServing: true}
		}
		return m
	}
	for _, tt := range []struct {
		name    string
		shards  map[string]*topodatapb.Shard
		want    []string
		wantErr error
	}{
		{"unsharded", serving("0"), []string{"0"}, nil},
		{"full range dash", serving("-"), []string{"-"}, nil},
		{"two halves", serving("80-", "-80"), []string{"-80", "80-"}, nil},
		{"four", serving("c0-", "-40", "80-c0", "40-80"), []string{"-40", "40-80", "80-c0", "c0-"}, nil},
		{"missing upper half", serving("-80"), nil, ErrIncompleteKeyspace},
		{"missing lower half", serving("80-"), nil, ErrIncompleteKeyspace},
		{"hole", serving("-40", "80-"), nil, ErrIncompleteKeyspace},
		{"overlap", serving("-80", "40-"), nil, ErrIncompleteKeyspace},
		{"none", map[string]*topodatapb.Shard{}, nil, ErrIncompleteKeyspace},
		{"not serving ignored", func() map[string]*topodatapb.Shard {
			m := serving("-80", "80-")
			m["-"] = &topodatapb.Shard{KeyRange: &topodatapb.KeyRange{}}
			return m
		}(), []string{"-80", "80-"}, nil},
	} {
		sk, err := buildSrvKeyspace("zone1", "ks", &topodatapb.Keyspace{}, tt.shards)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		checkPartitions(t, tt.name, sk, tt.want)
	}
}

// checkPartitions asserts PRIMARY, REPLICA, RDONLY partitions listing want in order.
func checkPartitions(t *testing.T, name string, sk *topodatapb.SrvKeyspace, want []string) {
	t.Helper()
	types := []topodatapb.TabletType{topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY}
	if len(sk.GetPartitions()) != len(types) {
		t.Fatalf("%s: %d partitions, want 3: %v", name, len(sk.GetPartitions()), sk)
	}
	for i, p := range sk.GetPartitions() {
		if p.GetServedType() != types[i] {
			t.Errorf("%s: partition %d type %v, want %v", name, i, p.GetServedType(), types[i])
		}
		var got []string
		for _, r := range p.GetShardReferences() {
			got = append(got, r.GetName())
			_, kr, _ := ValidateShardName(r.GetName())
			if !proto.Equal(r.GetKeyRange(), kr) {
				t.Errorf("%s: shard %s key range %v, want %v", name, r.GetName(), r.GetKeyRange(), kr)
			}
		}
		if !equalStrings(got, want) {
			t.Errorf("%s: partition %v shards %v, want %v", name, p.GetServedType(), got, want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
