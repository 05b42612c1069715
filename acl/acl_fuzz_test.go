package acl

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/tableaclpb"
)

// FuzzParseConfig: any table ACL file, JSON or binary, is accepted or refused with
// ErrInvalidConfig — never a panic; an accepted one compiles or is refused the same way, its
// binary form says exactly what its JSON form says, and a user no group names is denied
// every role on every table (the ACL never opens access by accident).
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		`{"table_groups":[{"name":"orders","table_names_or_prefixes":["order%","customer"],"readers":["app"],"writers":["app"],"admins":["dba"]}]}`,
		`{"tableGroups":[{"name":"all","tableNamesOrPrefixes":["%"],"readers":["ro"]}]}`,
		`{"table_groups":[]}`, `{}`, `{"table_groups":[{"name":"x","table_names_or_prefixes":["a%b"]}]}`,
		`{"table_groups":[{"name":"x","unknown":1}]}`, "\n\t{", "\x0a\x05\x0a\x03abc",
	} {
		f.Add([]byte(seed))
	}
	bin, _ := proto.Marshal(&tableaclpb.Config{TableGroups: []*tableaclpb.TableGroupSpec{{Name: "g", TableNamesOrPrefixes: []string{"t%"}, Readers: []string{"u"}}}})
	f.Add(bin)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("refused without ErrInvalidConfig: %v", err)
			}
			return
		}
		pc := &tableaclpb.Config{}
		for _, g := range cfg.TableGroups {
			pc.TableGroups = append(pc.TableGroups, &tableaclpb.TableGroupSpec{Name: g.Name,
				TableNamesOrPrefixes: g.TableNamesOrPrefixes, Readers: g.Readers, Writers: g.Writers, Admins: g.Admins})
		}
		b, err := proto.Marshal(pc)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 { // an empty config is zero bytes, which reads as no file at all
			again, err := ParseConfig(b)
			if err != nil || !equalConfigs(again, cfg) {
				t.Fatalf("binary form reads as %+v (%v), JSON form as %+v", again, err, cfg)
			}
		}
		a, err := Compile(cfg)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Compile refused without ErrInvalidConfig: %v", err)
			}
			return
		}
		for _, g := range cfg.TableGroups {
			for _, name := range append(g.TableNamesOrPrefixes, "some_other_table", "") {
				for _, r := range []Role{Reader, Writer, Admin} {
					if a.Allowed(name, r, "\x00nobody named this\x00", nil) {
						t.Fatalf("a user no group names is allowed %v on %q", r, name)
					}
				}
			}
		}
	})
}

// equalConfigs compares two configs, nil and empty lists alike.
func equalConfigs(a, b *Config) bool {
	if len(a.TableGroups) != len(b.TableGroups) {
		return false
	}
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	for i := range a.TableGroups {
		x, y := a.TableGroups[i], b.TableGroups[i]
		if x.Name != y.Name || !reflect.DeepEqual(norm(x.TableNamesOrPrefixes), norm(y.TableNamesOrPrefixes)) ||
			!reflect.DeepEqual(norm(x.Readers), norm(y.Readers)) || !reflect.DeepEqual(norm(x.Writers), norm(y.Writers)) ||
			!reflect.DeepEqual(norm(x.Admins), norm(y.Admins)) {
			return false
		}
	}
	return true
}
