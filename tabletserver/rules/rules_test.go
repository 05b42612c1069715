package rules

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustPlan(t *testing.T, sql string) *plan.Plan {
	t.Helper()
	p, err := plan.NewBuilder().Build(sql)
	if err != nil {
		t.Fatalf("Build(%q): %v", sql, err)
	}
	return p
}

func mustParse(t *testing.T, js string) *Rules {
	t.Helper()
	r, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse(%s): %v", js, err)
	}
	return r
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name, js string
		n        int
		action   Action
		ruleName string
		desc     string
	}{
		{"empty", `[]`, 0, Fail, "", ""},
		{"default action", `[{"Name":"r1","Description":"d"}]`, 1, Fail, "r1", "d"},
		{"fail retry", `[{"Name":"r","Action":"FAIL_RETRY"}]`, 1, FailRetry, "r", ""},
		{"buffer", `[{"Action":"BUFFER"}]`, 1, Buffer, "", ""},
		{"all keys", `[{"Name":"a","Description":"b","RequestIP":"10\\..*","User":"bob",
			"Query":"select.*","LeadingComment":".*x.*","TrailingComment":"","Plans":["Select","DDL"],
			"TableNames":["t1"],"BindVarConds":[
			{"Name":"a","OnAbsent":false,"Operator":""},
			{"Name":"b","OnAbsent":true,"Operator":"==","Value":-1,"OnMismatch":false},
			{"Name":"c","OnAbsent":true,"Operator":"<","Value":18446744073709551615,"OnMismatch":false},
			{"Name":"d","OnAbsent":true,"Operator":">=","Value":"abc","OnMismatch":true},
			{"Name":"e","OnAbsent":true,"Operator":"NOMATCH","Value":"x.*","OnMismatch":true}],
			"Action":"FAIL"}]`, 1, Fail, "a", "b"},
		{"two rules", ` [{"Name":"x"},{"Name":"y"}] `, 2, Fail, "x", ""},
		{"empty lists", `[{"Plans":[],"TableNames":[],"BindVarConds":[]}]`, 1, Fail, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.js)
			if r.Len() != tt.n {
				t.Fatalf("Len = %d, want %d", r.Len(), tt.n)
			}
			if tt.n == 0 {
				return
			}
			first := r.Rules()[0]
			if first.Action() != tt.action || first.Name != tt.ruleName || first.Description != tt.desc {
				t.Errorf("got %v %q %q, want %v %q %q", first.Action(), first.Name, first.Description, tt.action, tt.ruleName, tt.desc)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, js string
		want     error
		index    int
		ruleName string
		key      string
		msg      string
	}{
		{"not json", `[{`, ErrBadJSON, -1, "", "", ""},
		{"empty", ``, ErrBadJSON, -1, "", "", ""},
		{"object not array", `{"Name":"x"}`, ErrBadJSON, -1, "", "", ""},
		{"null", `null`, ErrBadJSON, -1, "", "", ""},
		{"trailing data", `[] []`, ErrBadJSON, -1, "", "", ""},
		{"rule not object", `[{"Name":"a"}, 3]`, ErrBadType, 1, "", "", ""},
		{"null rule", `[null]`, ErrBadType, 0, "", "", ""},
		{"unknown key", `[{"Name":"a"},{"Name":"b","Bogus":1}]`, ErrUnknownKey, 1, "b", "Bogus",
			`query rules: rule 1 ("b"): key "Bogus": unknown key`},
		{"name not string", `[{"Name":1}]`, ErrBadType, 0, "", "Name", ""},
		{"bad user regexp", `[{"Name":"r","User":"("}]`, ErrBadRegexp, 0, "r", "User", ""},
		{"bad ip regexp", `[{"RequestIP":"[" }]`, ErrBadRegexp, 0, "", "RequestIP", ""},
		{"bad query regexp", `[{"Query":"a**"}]`, ErrBadRegexp, 0, "", "Query", ""},
		{"bad leading regexp", `[{"LeadingComment":"a{2,1}"}]`, ErrBadRegexp, 0, "", "LeadingComment", ""},
		{"bad trailing regexp", `[{"TrailingComment":"(?P<"}]`, ErrBadRegexp, 0, "", "TrailingComment", ""},
		{"unknown plan", `[{"Name":"p","Plans":["Select","Selekt"]}]`, ErrUnknownPlan, 0, "p", "Plans",
			`query rules: rule 0 ("p"): key "Plans": unknown plan name "Selekt"`},
		{"passthrough plan", `[{"Plans":["Passthrough"]}]`, ErrUnknownPlan, 0, "", "Plans", ""},
		{"plans not list", `[{"Plans":"Select"}]`, ErrBadType, 0, "", "Plans", ""},
		{"plan not string", `[{"Plans":[1]}]`, ErrBadType, 0, "", "Plans", ""},
		{"table not string", `[{"TableNames":[true]}]`, ErrBadType, 0, "", "TableNames", ""},
		{"unknown action", `[{"Name":"x","Action":"DROP"}]`, ErrUnknownAction, 0, "x", "Action",
			`query rules: rule 0 ("x"): key "Action": unknown action "DROP"`},
		{"lowercase action", `[{"Action":"fail"}]`, ErrUnknownAction, 0, "", "Action", ""},
		{"unknown operator", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"~","Value":1,"OnMismatch":true}]}]`,
			ErrUnknownOperator, 0, "", "BindVarConds", ""},
		{"bvc not object", `[{"BindVarConds":["a"]}]`, ErrBadType, 0, "", "BindVarConds", ""},
		{"bvc unknown key", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"","X":1}]}]`,
			ErrUnknownKey, 0, "", "BindVarConds", ""},
		{"bvc missing name", `[{"BindVarConds":[{"OnAbsent":true,"Operator":""}]}]`, ErrMissingKey, 0, "", "BindVarConds", ""},
		{"bvc missing onabsent", `[{"BindVarConds":[{"Name":"a","Operator":""}]}]`, ErrMissingKey, 0, "", "BindVarConds", ""},
		{"bvc missing operator", `[{"BindVarConds":[{"Name":"a","OnAbsent":true}]}]`, ErrMissingKey, 0, "", "BindVarConds", ""},
		{"bvc missing value", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"==","OnMismatch":true}]}]`,
			ErrMissingKey, 0, "", "BindVarConds", ""},
		{"bvc missing onmismatch", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"==","Value":1}]}]`,
			ErrMissingKey, 0, "", "BindVarConds", ""},
		{"bvc onabsent not bool", `[{"BindVarConds":[{"Name":"a","OnAbsent":"yes","Operator":""}]}]`,
			ErrBadType, 0, "", "BindVarConds", ""},
		{"match with number", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"MATCH","Value":1,"OnMismatch":true}]}]`,
			ErrBadValue, 0, "", "BindVarConds", ""},
		{"float value", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"==","Value":1.5,"OnMismatch":true}]}]`,
			ErrBadValue, 0, "", "BindVarConds", ""},
		{"too big value", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"==","Value":18446744073709551616,"OnMismatch":true}]}]`,
			ErrBadValue, 0, "", "BindVarConds", ""},
		{"bool value", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"==","Value":true,"OnMismatch":true}]}]`,
			ErrBadValue, 0, "", "BindVarConds", ""},
		{"bad match regexp", `[{"BindVarConds":[{"Name":"a","OnAbsent":true,"Operator":"MATCH","Value":"(","OnMismatch":true}]}]`,
			ErrBadRegexp, 0, "", "BindVarConds", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.js))
			if err == nil {
				t.Fatalf("Parse succeeded with %d rules, want error", r.Len())
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not a *ParseError", err)
			}
			if pe.Index != tt.index || pe.Name != tt.ruleName || pe.Key != tt.key {
				t.Errorf("at %d %q %q, want %d %q %q (%v)", pe.Index, pe.Name, pe.Key, tt.index, tt.ruleName, tt.key, err)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("message %q, want %q", err.Error(), tt.msg)
			}
		})
	}
}

func bvInt(v string) *querypb.BindVariable {
	return &querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte(v)}
}

func bvStr(v string) *querypb.BindVariable {
	return &querypb.BindVariable{Type: querypb.Type_VARCHAR, Value: []byte(v)}
}

func TestMatch(t *testing.T) {
	selectT1 := "select * from t1 where id = :id"
	tests := []struct {
		name  string
		rule  string // one rule object
		sql   string
		user  string
		ip    string
		bv    map[string]*querypb.BindVariable
		match bool
	}{
		{"no conditions", `{}`, selectT1, "", "", nil, true},
		{"user exact", `{"User":"bob"}`, selectT1, "bob", "", nil, true},
		{"user anchored", `{"User":"bob"}`, selectT1, "bobby", "", nil, false},
		{"user anchored prefix", `{"User":"bob"}`, selectT1, "xbob", "", nil, false},
		{"user regexp", `{"User":"bob.*"}`, selectT1, "bobby", "", nil, true},
		{"user alternation anchored only at ends as Vitess", `{"User":"bob|al"}`, selectT1, "bobby", "", nil, true},
		{"ip", `{"RequestIP":"10\\.0\\..*"}`, selectT1, "", "10.0.0.1", nil, true},
		{"ip miss", `{"RequestIP":"10\\.0\\..*"}`, selectT1, "", "110.0.0.1", nil, false},
		{"query", `{"Query":"select \\* from t1.*"}`, selectT1, "", "", nil, true},
		{"query anchored", `{"Query":"from t1"}`, selectT1, "", "", nil, false},
		{"leading comment", `{"LeadingComment":"/\\* lead \\*/ "}`, "/* lead */ select 1 from t1", "", "", nil, true},
		{"leading comment miss", `{"LeadingComment":"/\\* lead \\*/ "}`, "select 1 from t1", "", "", nil, false},
		{"trailing comment", `{"TrailingComment":".*trail.*"}`, "select 1 from t1 /* trail */", "", "", nil, true},
		{"trailing comment miss", `{"TrailingComment":".*trail.*"}`, "select 1 from t1", "", "", nil, false},
		{"plan", `{"Plans":["Insert","Select"]}`, selectT1, "", "", nil, true},
		{"plan miss", `{"Plans":["Insert"]}`, selectT1, "", "", nil, false},
		{"plan DDL alter", `{"Plans":["DDL"]}`, "alter table t1 add c int", "", "", nil, true},
		{"plan DDL create", `{"Plans":["DDL"]}`, "create table t9 (a int)", "", "", nil, true},
		{"plan DDL miss on select", `{"Plans":["DDL"]}`, selectT1, "", "", nil, false},
		{"table", `{"TableNames":["t9","t1"]}`, selectT1, "", "", nil, true},
		{"table in join", `{"TableNames":["t2"]}`, "select * from t1 join d.t2 on t1.a = t2.a", "", "", nil, true},
		{"table miss", `{"TableNames":["t2"]}`, selectT1, "", "", nil, false},
		{"table case-sensitive", `{"TableNames":["T1"]}`, selectT1, "", "", nil, false},
		{"table DDL", `{"TableNames":["t1"]}`, "drop table t1", "", "", nil, true},
		{"combined all hold", `{"User":"bob","Plans":["Select"],"TableNames":["t1"],"BindVarConds":[{"Name":"id","OnAbsent":false,"Operator":"==","Value":5,"OnMismatch":false}]}`,
			selectT1, "bob", "", map[string]*querypb.BindVariable{"id": bvInt("5")}, true},
		{"combined one fails", `{"User":"bob","Plans":["Select"],"TableNames":["t1"],"BindVarConds":[{"Name":"id","OnAbsent":false,"Operator":"==","Value":5,"OnMismatch":false}]}`,
			selectT1, "bob", "", map[string]*querypb.BindVariable{"id": bvInt("6")}, false},
		{"combined user fails", `{"User":"bob","Plans":["Select"]}`, selectT1, "alice", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustParse(t, "["+tt.rule+"]")
			p := mustPlan(t, tt.sql)
			r, ok := rs.Match(Query{Plan: p, SQL: tt.sql, BindVars: tt.bv, User: tt.user, RemoteIP: tt.ip})
			if ok != tt.match || (ok && r != rs.Rules()[0]) || (!ok && r != nil) {
				t.Errorf("Match = %v, %v; want %v", r, ok, tt.match)
			}
		})
	}
}

func TestBindVarConds(t *testing.T) {
	cond := func(op, value string, onAbsent, onMismatch bool) string {
		b := func(v bool) string {
			if v {
				return "true"
			}
			return "false"
		}
		s := `{"Name":"v","OnAbsent":` + b(onAbsent) + `,"Operator":"` + op + `"`
		if value != "" {
			s += `,"Value":` + value + `,"OnMismatch":` + b(onMismatch)
		}
		return `[{"BindVarConds":[` + s + `}]}]`
	}
	tuple := &querypb.BindVariable{Type: querypb.Type_TUPLE}
	date := &querypb.BindVariable{Type: querypb.Type_DATE, Value: []byte("2020-01-01")}
	tests := []struct {
		name  string
		rules string
		bv    *querypb.BindVariable // nil: absent
		want  bool
	}{
		{"presence: present", cond("", "", false, false), bvInt("1"), true},
		{"presence: absent", cond("", "", false, false), nil, false},
		{"presence inverted: present", cond("", "", true, false), bvInt("1"), false},
		{"presence inverted: absent", cond("", "", true, false), nil, true},
		{"absent gives OnAbsent true", cond("==", "1", true, false), nil, true},
		{"absent gives OnAbsent false", cond("==", "1", false, true), nil, false},
		{"int ==", cond("==", "-3", false, false), bvInt("-3"), true},
		{"int == miss", cond("==", "-3", false, false), bvInt("3"), false},
		{"int !=", cond("!=", "-3", false, false), bvInt("3"), true},
		{"int <", cond("<", "10", false, false), bvInt("9"), true},
		{"int < miss", cond("<", "10", false, false), bvInt("10"), false},
		{"int >=", cond(">=", "10", false, false), bvInt("10"), true},
		{"int >", cond(">", "10", false, false), bvInt("11"), true},
		{"int <=", cond("<=", "10", false, false), bvInt("11"), false},
		{"int from string var", cond("==", "7", false, false), bvStr("7"), true},
		{"int out of range ==", cond("==", "7", false, true), bvStr("x"), false},
		{"int out of range !=", cond("!=", "7", false, false), bvStr("x"), true},
		{"int out of range is above: >", cond(">", "7", false, false), bvInt("99999999999999999999"), true},
		{"int out of range is above: <", cond("<", "7", false, true), bvInt("99999999999999999999"), false},
		{"uint ==", cond("==", "18446744073709551615", false, false),
			&querypb.BindVariable{Type: querypb.Type_UINT64, Value: []byte("18446744073709551615")}, true},
		{"uint negative is below: <", cond("<", "18446744073709551615", false, false), bvInt("-1"), true},
		{"uint negative is below: >=", cond(">=", "18446744073709551615", false, true), bvInt("-1"), false},
		{"int tuple out of range", cond("==", "1", false, true), tuple, false},
		{"string ==", cond("==", `"abc"`, false, false), bvStr("abc"), true},
		{"string !=", cond("!=", `"abc"`, false, false), bvStr("abd"), true},
		{"string <", cond("<", `"b"`, false, false), bvStr("a"), true},
		{"string >=", cond(">=", `"b"`, false, false), bvStr("a"), false},
		{"string >", cond(">", `"b"`, false, false), bvStr("c"), true},
		{"string <=", cond("<=", `"b"`, false, false), bvStr("b"), true},
		{"string vs int var", cond("==", `"12"`, false, false), bvInt("12"), true},
		{"string mismatch true", cond("==", `"x"`, false, true), date, true},
		{"string mismatch false", cond("==", `"x"`, true, false), date, false},
		{"match", cond("MATCH", `"a.c"`, false, false), bvStr("abc"), true},
		{"match anchored", cond("MATCH", `"b"`, false, false), bvStr("abc"), false},
		{"nomatch", cond("NOMATCH", `"a.c"`, false, false), bvStr("abc"), false},
		{"nomatch hit", cond("NOMATCH", `"b"`, false, false), bvStr("abc"), true},
		{"match mismatch", cond("MATCH", `".*"`, false, true), tuple, true},
	}
	p := mustPlan(t, "select * from t1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustParse(t, tt.rules)
			bvs := map[string]*querypb.BindVariable{"other": bvInt("1")}
			if tt.bv != nil {
				bvs["v"] = tt.bv
			}
			if _, got := rs.Match(Query{Plan: p, SQL: "select * from t1", BindVars: bvs}); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeniedTablesAndErr(t *testing.T) {
	const msg = "disallowed due to rule: enforce denied tables"
	denied := DeniedTables([]string{"t1", "t2"})
	if denied.Action() != FailRetry || denied.Description != "enforce denied tables" || denied.Name != "denied_table" {
		t.Fatalf("DeniedTables = %+v", denied)
	}
	if DeniedTables(nil) != nil {
		t.Errorf("DeniedTables(nil) should be nil")
	}
	file := mustParse(t, `[{"Name":"ban","Description":"no bob","User":"bob","Action":"FAIL"}]`)
	all := file.Append(New(denied))
	if file.Len() != 1 || all.Len() != 2 {
		t.Fatalf("Append: lens %d %d", file.Len(), all.Len())
	}
	tests := []struct {
		name, sql, user string
		wantRule        string
		code            vtrpcpb.Code
		msg             string
	}{
		{"select denied", "select * from t2", "alice", "denied_table", vtrpcpb.Code_FAILED_PRECONDITION, msg},
		{"ddl denied", "alter table t1 add c int", "alice", "denied_table", vtrpcpb.Code_FAILED_PRECONDITION, msg},
		{"insert denied", "insert into t1 values (1)", "alice", "denied_table", vtrpcpb.Code_FAILED_PRECONDITION, msg},
		{"first rule wins", "select * from t1", "bob", "ban", vtrpcpb.Code_INVALID_ARGUMENT, "disallowed due to rule: no bob"},
		{"allowed", "select * from t3", "alice", "", vtrpcpb.Code_OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := all.Match(Query{Plan: mustPlan(t, tt.sql), SQL: tt.sql, User: tt.user})
			if tt.wantRule == "" {
				if ok {
					t.Fatalf("matched %q", r.Name)
				}
				return
			}
			if !ok || r.Name != tt.wantRule {
				t.Fatalf("Match = %v %v, want %q", r, ok, tt.wantRule)
			}
			err := r.Err()
			if rpcerr.Code(err) != tt.code || err.Error() != tt.msg {
				t.Errorf("Err = %v (%v), want %v %q", err, rpcerr.Code(err), tt.code, tt.msg)
			}
			if !errors.Is(err, rpcerr.OfCode(tt.code)) {
				t.Errorf("errors.Is(%v, code %v) false", err, tt.code)
			}
		})
	}
}

func TestBufferAndNil(t *testing.T) {
	rs := mustParse(t, `[{"Name":"b","Action":"BUFFER"},{"Name":"f"}]`)
	r, ok := rs.Match(Query{Plan: mustPlan(t, "select 1 from t1"), SQL: "select 1 from t1"})
	if !ok || r.Name != "b" || r.Err() != nil {
		t.Errorf("BUFFER rule: %v %v err %v; want it to shadow later rules and give no error", r, ok, r.Err())
	}
	var none *Rules
	if _, ok := none.Match(Query{}); ok || none.Len() != 0 || none.Append(rs).Len() != 2 {
		t.Errorf("nil Rules not empty")
	}
	if _, ok := mustParse(t, `[{"Plans":["Select"]}]`).Match(Query{SQL: "x"}); ok {
		t.Errorf("Plans condition matched a nil plan")
	}
	if got := Action(7).String() + Buffer.String() + MatchOp.String(); got != "BUFFERMATCH" {
		t.Errorf("names %q", got)
	}
}
