package tabletserver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabletd/tabletd/acl"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

func testACL(t testing.TB, strict bool) *tableACL {
	t.Helper()
	cfg, err := acl.ParseConfig([]byte(`{"table_groups":[{"name":"g","table_names_or_prefixes":["sbtest%"],"readers":["bench"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := acl.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ta, err := newTableACL(ACLConfig{Strict: strict}, "vt_commerce", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ta.current.Store(a)
	return ta
}

func TestTableACLModes(t *testing.T) {
	p, err := plan.NewBuilder().Build("select c from sbtest1 join other on 1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		strict bool
		user   string
		want   vtrpcpb.Code
	}{
		{"strict denies the unlisted table", true, "bench", vtrpcpb.Code_PERMISSION_DENIED},
		{"non-strict only counts", false, "bench", vtrpcpb.Code_OK},
		{"strict without caller", true, "", vtrpcpb.Code_UNAUTHENTICATED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rpcerr.Code(testACL(t, tc.strict).check(p, tc.user, nil)); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkACLAndPlanLookup is what ACL checking and the plan lookup add to a cached point
// select (issue target: ≤ 5 µs).
func BenchmarkACLAndPlanLookup(b *testing.B) {
	ta := testACL(b, true)
	cache := plan.NewCache(100)
	const sql = "select c from sbtest1 where id = :id"
	p, err := plan.NewBuilder().Build(sql)
	if err != nil {
		b.Fatal(err)
	}
	cache.Add(sql, p)
	bv := map[string]*querypb.BindVariable{"id": {Type: querypb.Type_INT64, Value: []byte("42")}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		p, _ := cache.Get(sql)
		if err := ta.check(p, "bench", nil); err != nil {
			b.Fatal(err)
		}
		buf, _ = p.Query.Generate(buf[:0], bv)
	}
}
