package acl

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/tableaclpb"
)

// TestParseConfigBinary: the binary protobuf form gives the same config as its JSON form,
// and is validated the same way.
func TestParseConfigBinary(t *testing.T) {
	pc := &tableaclpb.Config{TableGroups: []*tableaclpb.TableGroupSpec{
		{Name: "orders", TableNamesOrPrefixes: []string{"order%", "customer"}, Readers: []string{"app", "ro"}, Writers: []string{"app"}, Admins: []string{"dba"}},
		{Name: "empty"},
	}}
	data, err := proto.Marshal(pc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig(data)
	if err != nil {
		t.Fatalf("ParseConfig(binary): %v", err)
	}
	want, err := ParseConfig([]byte(`{"table_groups":[
		{"name":"orders","table_names_or_prefixes":["order%","customer"],"readers":["app","ro"],"writers":["app"],"admins":["dba"]},
		{"name":"empty"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("binary form = %+v, JSON form = %+v", got, want)
	}
	a, err := Compile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allowed("orders_2024", Reader, "ro", nil) || a.Allowed("orders_2024", Writer, "ro", nil) {
		t.Fatal("binary config compiled to the wrong ACL")
	}
}

func TestParseConfigBinaryBad(t *testing.T) {
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	overlap := marshal(&tableaclpb.Config{TableGroups: []*tableaclpb.TableGroupSpec{
		{Name: "g", TableNamesOrPrefixes: []string{"t%"}}, {Name: "h", TableNamesOrPrefixes: []string{"t1"}}}})
	// A valid config followed by a field tableacl.Config does not have (number 7).
	unknownTop := protowire.AppendString(protowire.AppendTag(marshal(&tableaclpb.Config{}), 7, protowire.BytesType), "x")
	group := protowire.AppendString(protowire.AppendTag(marshal(&tableaclpb.TableGroupSpec{Name: "g"}), 9, protowire.BytesType), "x")
	unknownInGroup := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), group)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", marshal(&tableaclpb.Config{TableGroups: []*tableaclpb.TableGroupSpec{{Name: "g"}}})[:3], ""},
		{"yaml text", []byte("table_groups:\n  - name: g\n"), ""},
		{"unknown top-level field", unknownTop, "table acl: binary tableacl.Config has unknown fields: not a table ACL file"},
		{"unknown group field", unknownInGroup, `table acl: table_groups[0] (group "g"): binary tableacl.TableGroupSpec has unknown fields`},
		{"overlap", overlap, `table acl: table_groups[1] (group "h"): entry "t1": overlaps with entry "t%" of group "g"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(tc.in)
			if err == nil {
				t.Fatalf("ParseConfig = %+v, want an error", cfg)
			}
			var ce *ConfigError
			if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError matching ErrInvalidConfig", err)
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Fatalf("error =\n  %s\nwant\n  %s", err, tc.want)
			}
		})
	}
}
