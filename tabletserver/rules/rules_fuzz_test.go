package rules

import (
	"errors"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// FuzzParse: any query rules file is accepted or refused with a *ParseError — never a
// panic, never a partial rule set — and accepted rules match queries (with and without bind
// variables) without panicking.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`[{"Name":"r1","Description":"d","Query":"select \\* from big","Action":"FAIL_RETRY"}]`,
		`[{"Name":"r2","User":"bob","Plans":["DDL","Select"],"TableNames":["t"]}]`,
		`[{"Name":"r3","BindVarConds":[{"Name":"id","OnAbsent":false,"Operator":"<","Value":100,"OnMismatch":false}]}]`,
		`[{"Name":"r4","BindVarConds":[{"Name":"s","OnAbsent":true,"Operator":"MATCH","Value":"a.*","OnMismatch":true}]}]`,
		`[{"Name":"r5","Query":"(unclosed"}]`, `[]`, `{}`, `[1]`, `[{"Name":"r6","Action":"NOPE"}]`,
		`[{"Name":"r7","RequestIP":"10\\..*","LeadingComment":".*x.*","TrailingComment":""}]`,
	} {
		f.Add([]byte(seed))
	}
	queries := []string{"select * from big", "select id from big where id = :id", "create table t (id int)", "update t set a = :s"}
	plans := make([]*plan.Plan, len(queries))
	for i, q := range queries {
		p, err := plan.Build(q)
		if err != nil {
			f.Fatal(err)
		}
		plans[i] = p
	}
	bvs := []map[string]*querypb.BindVariable{nil,
		{"id": {Type: querypb.Type_INT64, Value: []byte("7")}, "s": {Type: querypb.Type_VARCHAR, Value: []byte("abc")}},
		{"id": {Type: querypb.Type_VARCHAR, Value: []byte("x")}, "s": {Type: querypb.Type_TUPLE}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("refused without a *ParseError: %v", err)
			}
			if rs != nil {
				t.Fatal("a refused file returned rules")
			}
			return
		}
		for i, p := range plans {
			for _, bv := range bvs {
				_, _ = rs.Match(Query{Plan: p, SQL: queries[i], BindVars: bv, User: "bob", RemoteIP: "10.0.0.1"})
			}
		}
	})
}
