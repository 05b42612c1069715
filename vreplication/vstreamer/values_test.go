package vstreamer

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
)

// TestCellText converts go-mysql's decoded binlog values to the text a target receives.
func TestCellText(t *testing.T) {
	members := []string{"a", "b", "c"}
	tests := []struct {
		name  string
		v     interface{}
		field *querypb.Field
		typ   byte
		meta  uint16
		want  string
	}{
		{"signed tinyint", int8(-1), &querypb.Field{Type: querypb.Type_INT8}, mysql.MYSQL_TYPE_TINY, 0, "-1"},
		{"unsigned tinyint", int8(-1), &querypb.Field{Type: querypb.Type_UINT8}, mysql.MYSQL_TYPE_TINY, 0, "255"},
		{"unsigned smallint", int16(-2), &querypb.Field{Type: querypb.Type_UINT16}, mysql.MYSQL_TYPE_SHORT, 0, "65534"},
		{"unsigned mediumint", int32(-1), &querypb.Field{Type: querypb.Type_UINT24}, mysql.MYSQL_TYPE_INT24, 0, "16777215"},
		{"unsigned int", int32(-1), &querypb.Field{Type: querypb.Type_UINT32}, mysql.MYSQL_TYPE_LONG, 0, "4294967295"},
		{"unsigned bigint", int64(-1), &querypb.Field{Type: querypb.Type_UINT64}, mysql.MYSQL_TYPE_LONGLONG, 0, "18446744073709551615"},
		{"signed bigint", int64(-5), &querypb.Field{Type: querypb.Type_INT64}, mysql.MYSQL_TYPE_LONGLONG, 0, "-5"},
		{"float as Vitess streams it", float32(1.5), &querypb.Field{Type: querypb.Type_FLOAT32}, mysql.MYSQL_TYPE_FLOAT, 0, "1.5E+00"},
		{"double", 0.1, &querypb.Field{Type: querypb.Type_FLOAT64}, mysql.MYSQL_TYPE_DOUBLE, 0, "1E-01"},
		{"decimal string", "-12.50", &querypb.Field{Type: querypb.Type_DECIMAL}, mysql.MYSQL_TYPE_NEWDECIMAL, 0, "-12.50"},
		{"enum by member", int64(2), &querypb.Field{Type: querypb.Type_ENUM}, mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 1, "b"},
		{"enum error value", int64(0), &querypb.Field{Type: querypb.Type_ENUM}, mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 1, ""},
		{"set bits", int64(5), &querypb.Field{Type: querypb.Type_SET}, mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_SET)<<8 | 1, "a,c"},
		{"bit(12) big-endian", int64(0x0a0b), &querypb.Field{Type: querypb.Type_BIT}, mysql.MYSQL_TYPE_BIT, 1<<8 | 4, "\x0a\x0b"},
		{"year zero", 0, &querypb.Field{Type: querypb.Type_YEAR}, mysql.MYSQL_TYPE_YEAR, 0, "0000"},
		{"year", 2024, &querypb.Field{Type: querypb.Type_YEAR}, mysql.MYSQL_TYPE_YEAR, 0, "2024"},
		{"binary(4) padded", "ab", &querypb.Field{Type: querypb.Type_BINARY, ColumnType: "binary(4)"}, mysql.MYSQL_TYPE_STRING, 0, "ab\x00\x00"},
		{"char not padded", "ab", &querypb.Field{Type: querypb.Type_CHAR, ColumnType: "char(4)"}, mysql.MYSQL_TYPE_STRING, 0, "ab"},
		{"blob bytes", []byte{0, 1}, &querypb.Field{Type: querypb.Type_BLOB}, mysql.MYSQL_TYPE_BLOB, 2, "\x00\x01"},
		{"datetime", "2024-01-02 03:04:05.120", &querypb.Field{Type: querypb.Type_DATETIME}, mysql.MYSQL_TYPE_DATETIME2, 3, "2024-01-02 03:04:05.120"},
	}
	for _, tc := range tests {
		got, err := cellText(tc.v, tc.field, tc.typ, tc.meta, members)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := cellText(int64(4), &querypb.Field{Type: querypb.Type_ENUM, ColumnType: "enum('a')"}, mysql.MYSQL_TYPE_ENUM, 1, []string{"a"}); err == nil {
		t.Error("an ENUM index beyond the members was accepted")
	}
	if _, err := cellText(struct{}{}, &querypb.Field{}, 0, 0, nil); err == nil {
		t.Error("an unknown Go value was accepted")
	}
}

func TestClassify(t *testing.T) {
	for sql, want := range map[string]statementKind{
		"BEGIN":                                   stmtBegin,
		"COMMIT":                                  stmtCommit,
		"/* hi */ ALTER TABLE t ADD c INT":        stmtDDL,
		"create database d":                       stmtDBDDL,
		"DROP SCHEMA d":                           stmtDBDDL,
		"SAVEPOINT x":                             stmtSavepoint,
		"ROLLBACK TO SAVEPOINT x":                 stmtSavepoint,
		"ROLLBACK":                                stmtRollback,
		"insert into t values (1)":                stmtInsert,
		"GRANT SELECT ON *.* TO u":                stmtOther,
		"/*!40000 ALTER TABLE t DISABLE KEYS */":  stmtDDL,
		"# comment\ntruncate table t":             stmtDDL,
		"FLUSH PRIVILEGES":                        stmtOther,
		"":                                        stmtOther,
		"CREATE OR REPLACE VIEW v AS SELECT 1":    stmtDDL,
		"rename table a to b":                     stmtDDL,
		"update t set a = 1":                      stmtUpdate,
		"SET @@session.foreign_key_checks = 0":    stmtOther,
		"XA START 'x'":                            stmtBegin,
		"replace into t values (1)":               stmtReplace,
		"delete from t":                           stmtDelete,
		"-- comment\nCREATE TABLE t (id int)":     stmtDDL,
		"(SELECT 1)":                              stmtOther,
		"release savepoint x":                     stmtSavepoint,
		"ANALYZE TABLE t":                         stmtOther,
		"drop table if exists `_vt`.`vdiff_log`":  stmtDDL,
		"create /*M!100400 or replace */ table t": stmtDDL,
	} {
		if got := classify(sql); got != want {
			t.Errorf("classify(%q) = %v, want %v", sql, got, want)
		}
	}
}

func TestDDLTables(t *testing.T) {
	for _, tc := range []struct {
		sql, db string
		want    []string
		parsed  bool
	}{
		{"alter table customer add column x int", "vt_ks", []string{"customer"}, true},
		{"rename table a to b, c to d", "vt_ks", []string{"a", "b", "c", "d"}, true},
		{"drop table other.t, t2", "vt_ks", []string{"t2"}, true},
		{"create table t (id int primary key)", "", []string{"t"}, true},
		{"alter table t rename to u", "vt_ks", []string{"t", "u"}, true},
		{"this is not sql", "vt_ks", nil, false},
	} {
		got, parsed := ddlTables(tc.sql, tc.db, "vt_ks")
		if parsed != tc.parsed || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %v %v", tc.sql, got, parsed, tc.want, tc.parsed)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %v, want %v", tc.sql, got, tc.want)
			}
		}
	}
}

// TestEmitBatching: GTID, BEGIN and FIELD wait for what follows; COMMIT sends them together;
// rows beyond the packet size go in the next message.
func TestEmitBatching(t *testing.T) {
	var sent [][]binlogdatapb.VEventType
	e := &Engine{cfg: Config{PacketSize: 10}, metrics: newTestMetrics()}
	s := &binlogStream{e: e, send: func(evs []*binlogdatapb.VEvent) error {
		var types []binlogdatapb.VEventType
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		sent = append(sent, types)
		return nil
	}}
	rowEv := func(n int) *binlogdatapb.VEvent {
		return &binlogdatapb.VEvent{Type: binlogdatapb.VEventType_ROW, RowEvent: &binlogdatapb.RowEvent{
			RowChanges: []*binlogdatapb.RowChange{{After: &querypb.Row{Lengths: []int64{int64(n)}, Values: make([]byte, n)}}}}}
	}
	for _, ev := range []*binlogdatapb.VEvent{
		{Type: binlogdatapb.VEventType_BEGIN}, {Type: binlogdatapb.VEventType_FIELD}, rowEv(6), rowEv(6),
		{Type: binlogdatapb.VEventType_GTID}, {Type: binlogdatapb.VEventType_COMMIT},
		{Type: binlogdatapb.VEventType_HEARTBEAT},
	} {
		if err := s.emit(ev); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]binlogdatapb.VEventType{
		{binlogdatapb.VEventType_BEGIN, binlogdatapb.VEventType_FIELD, binlogdatapb.VEventType_ROW},
		{binlogdatapb.VEventType_ROW, binlogdatapb.VEventType_GTID, binlogdatapb.VEventType_COMMIT},
		{binlogdatapb.VEventType_HEARTBEAT},
	}
	if len(sent) != len(want) {
		t.Fatalf("sent %v, want %v", sent, want)
	}
	for i := range want {
		if len(sent[i]) != len(want[i]) {
			t.Fatalf("message %d: %v, want %v", i, sent[i], want[i])
		}
		for j := range want[i] {
			if sent[i][j] != want[i][j] {
				t.Errorf("message %d: %v, want %v", i, sent[i], want[i])
			}
		}
	}
}

func newTestMetrics() *metrics {
	m, err := newMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		panic(err)
	}
	return m
}
