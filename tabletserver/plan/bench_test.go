package plan

import (
	"fmt"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
)

const pointSelect = "select id, name, email from users where id = :id"

// BenchmarkCacheHit is the plan lookup of every request: Get of a cached point-select plan
// from a cache holding 1000 plans.
func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(1000)
	p, err := Build(pointSelect)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 999 {
		c.Add(fmt.Sprintf("select * from t where id = %d", i), p)
	}
	c.Add(pointSelect, p)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(pointSelect); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCacheHitParallel is BenchmarkCacheHit from GOMAXPROCS goroutines at once.
func BenchmarkCacheHitParallel(b *testing.B) {
	c := NewCache(1000)
	p, err := Build(pointSelect)
	if err != nil {
		b.Fatal(err)
	}
	c.Add(pointSelect, p)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(pointSelect); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkGenerate is the final SQL of a point select with one INT64 bind variable.
func BenchmarkGenerate(b *testing.B) {
	p, err := Build(pointSelect)
	if err != nil {
		b.Fatal(err)
	}
	bvs := map[string]*querypb.BindVariable{"id": {Type: querypb.Type_INT64, Value: []byte("1234567")}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = p.Query.Generate(buf[:0], bvs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild is a cold plan: scan, parse and analyse a point select (with a Builder's
// parser pool, as the query engine uses it).
func BenchmarkBuild(b *testing.B) {
	bench := func(name, sql string) {
		b.Run(name, func(b *testing.B) {
			bl := NewBuilder()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bl.Build(sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	bench("point_select", pointSelect)
	bench("join_subquery", "select u.id, o.total from users u join orders o on o.user_id = u.id "+
		"where u.id in ::ids and o.created > (select max(created) from archive where user_id = :uid) order by o.total desc")
	bench("insert", "insert into orders (id, user_id, total) values (:id, :uid, :total) on duplicate key update total = values(total)")
	bench("passthrough", "insert into orders (id) values (:id) returning id")
}

// BenchmarkBuildOneOff is Build without a Builder: a new parser per call.
func BenchmarkBuildOneOff(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(pointSelect); err != nil {
			b.Fatal(err)
		}
	}
}
